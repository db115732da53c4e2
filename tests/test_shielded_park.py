"""WaitQueue.park_shielded(): a wait that a cancel or a timeout does not end, but a kill does.

Library code parks this way for clean-up that must finish (a Condition's wait re-taking
its lock, a task group waiting for the children it cancelled); the cancel is not lost,
it hits at the task's next blocking point.
"""

from __future__ import annotations

import pytest

import pyos
from pyos import CancelTask, KillTask, NewTask, Sleep, TaskTimeout, WaitQueue, WaitTask


def run(main):
    return pyos.run(main, clock=pyos.VirtualClock())


def shielded(queue, record):
    value = yield queue.park_shielded()
    record.append(("woke", value))
    try:
        yield Sleep(1)                     # the next blocking point
    except pyos.Cancelled:
        record.append("cancelled at the next blocking point")
        raise


def test_cancel_waits_for_the_next_blocking_point():
    record = []
    queue = WaitQueue("q")

    def main():
        tid = yield NewTask(shielded(queue, record))
        yield Sleep(1)
        yield CancelTask(tid)
        yield Sleep(1)
        record.append(("still parked", len(queue)))
        queue.wake("value")
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)

    run(main())
    assert record == [("still parked", 1), ("woke", "value"),
                      "cancelled at the next blocking point"]


def test_a_pending_cancel_does_not_stop_it_parking():
    record = []
    queue = WaitQueue("q")

    def me():
        yield CancelTask((yield pyos.GetTid()))     # pending: no blocking point yet
        yield from shielded(queue, record)

    def main():
        tid = yield NewTask(me())
        yield Sleep(1)
        record.append(("parked", len(queue)))
        queue.wake(7)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)

    run(main())
    assert record == [("parked", 1), ("woke", 7), "cancelled at the next blocking point"]


def test_timeout_during_shielded_wait_is_raised_by_its_scope_afterwards():
    record = []
    queue = WaitQueue("q")

    def me():
        try:
            with (yield pyos.timeout_after(1)):
                yield from shielded(queue, record)
        except TaskTimeout:
            record.append("TaskTimeout")

    def main():
        tid = yield NewTask(me())
        yield Sleep(5)
        queue.wake(1)
        yield WaitTask(tid)

    run(main())
    assert record == [("woke", 1), "cancelled at the next blocking point", "TaskTimeout"]


def test_kill_ends_it_and_leaves_no_trace():
    record = []
    queue = WaitQueue("q")

    def main():
        tid = yield NewTask(shielded(queue, record))
        yield Sleep(1)
        yield KillTask(tid)
        record.append(("left", len(queue)))
        assert queue.wake(1) == 0

    run(main())
    assert record == [("left", 0)]


def test_ps_describes_the_queue():
    queue = WaitQueue("q")

    def main():
        tid = yield NewTask(shielded(queue, []), name="waiter")
        yield Sleep(1)
        states = {info.name: info.state for info in (yield pyos.Ps())}
        queue.wake()
        yield KillTask(tid)
        return states["waiter"]

    assert run(main()) == "waiting on WaitQueue 'q'"
