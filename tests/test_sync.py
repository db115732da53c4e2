"""Event, Semaphore and BoundedSemaphore (pyos/sync.py), on the virtual clock.

Each test records what happens, in order, and checks the whole list: fairness, hand-off
and cancellation are about order.  Waiter counts are checked back at zero after a task
leaves (a leak check).  Lock, RLock and Condition are in test_locks.py.
"""

from __future__ import annotations

import pytest

import pyos
from pyos import (
    BoundedSemaphore,
    CancelTask,
    Event,
    KillTask,
    NewTask,
    Ps,
    Semaphore,
    Sleep,
    TaskTimeout,
    WaitTask,
    timeout_after,
)


def run(main):
    return pyos.run(main, clock=pyos.VirtualClock())


def states(infos):
    return {info.name: info.state for info in infos}


# -- Event ---------------------------------------------------------------------------------
def test_event_set_wakes_every_waiter_in_order_generator_and_async():
    record = []
    ready = Event("ready")

    def gen_waiter(n):
        record.append(("gen", n, (yield ready.wait())))

    async def async_waiter(n):
        record.append(("async", n, await ready.wait()))

    def main():
        for n in range(2):
            yield NewTask(gen_waiter(n))
            yield NewTask(async_waiter(n))
        yield Sleep(1)
        assert not ready.is_set()
        record.append("set")
        ready.set()
        yield Sleep(1)
        record.append(("later", (yield ready.wait())))      # set: at once
        ready.clear()
        assert not ready.is_set() and len(ready._waiters) == 0

    run(main())
    assert record == ["set", ("gen", 0, True), ("async", 0, True), ("gen", 1, True),
                      ("async", 1, True), ("later", True)]


def test_event_wait_costs_no_system_call_once_set(caplog):
    """A wait on a set event returns without a system call (the trace shows none)."""
    ready = Event()

    async def main():
        ready.set()
        for _ in range(3):
            assert await ready.wait() is True

    caplog.set_level("INFO", logger="pyos")
    pyos.run(main(), trace=True)
    assert [r.getMessage() for r in caplog.records if "park" in r.getMessage()] == []


def test_event_ps_and_cancelled_waiter_leaves_no_trace():
    ready = Event("ready")
    record = []

    def waiter():
        try:
            yield ready.wait()
        except pyos.Cancelled:
            record.append("cancelled")
            raise

    def main():
        tid = yield NewTask(waiter(), name="waiter")
        yield Sleep(1)
        record.append(states((yield Ps()))["waiter"])
        yield CancelTask(tid)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)
        record.append(len(ready._waiters))
        ready.set()

    run(main())
    assert record == ["waiting for Event 'ready'", "cancelled", 0]


def test_event_timeout():
    ready = Event("ready")

    async def main():
        with pytest.raises(TaskTimeout):
            await timeout_after(2, ready.wait())
        assert len(ready._waiters) == 0
        return pyos.current_tid()

    assert run(main()) == 1


def test_event_cancel_after_set_does_not_take_the_wake_up_back():
    """set() made the waiter ready; a cancel then waits for its next blocking point."""
    ready = Event("ready")
    record = []

    def waiter():
        record.append(("woke", (yield ready.wait())))
        try:
            yield Sleep(1)
        except pyos.Cancelled:
            record.append("cancelled at the next blocking point")

    def main():
        tid = yield NewTask(waiter())
        yield Sleep(1)
        ready.set()
        yield CancelTask(tid)
        yield WaitTask(tid)

    run(main())
    assert record == [("woke", True), "cancelled at the next blocking point"]


# -- Semaphore -----------------------------------------------------------------------------
def test_semaphore_limits_and_serves_first_come_first_served():
    record = []
    sem = Semaphore(2, name="pool")

    def worker(n):
        with (yield sem.acquire()):
            record.append(("in", n, sem.value))
            yield Sleep(1)
        record.append(("out", n))

    async def aworker(n):
        async with sem:
            record.append(("in", n, sem.value))
            await Sleep(1)
        record.append(("out", n))

    def main():
        tids = []
        for n in range(4):
            tids.append((yield NewTask(worker(n) if n % 2 else aworker(n), name=f"w{n}")))
        yield Sleep(0.5)
        record.append(states((yield Ps()))["w2"])
        for tid in tids:
            yield WaitTask(tid)
        record.append(("value", sem.value))

    run(main())
    assert record == [("in", 0, 1), ("in", 1, 0), "waiting for Semaphore 'pool'",
                      ("out", 0), ("out", 1), ("in", 2, 0), ("in", 3, 0), ("out", 2),
                      ("out", 3), ("value", 2)]


def test_semaphore_release_hands_the_permit_no_barging():
    """A release with a waiter hands it the permit: value stays 0, the releaser waits."""
    record = []
    sem = Semaphore(1)

    def waiter():
        yield sem.acquire()
        record.append("waiter got it")
        sem.release()

    def main():
        yield sem.acquire()
        yield NewTask(waiter())
        yield Sleep(1)
        sem.release()
        record.append(("value after release", sem.value))
        yield sem.acquire()                       # must queue behind the waiter
        record.append("main got it again")

    run(main())
    assert record == [("value after release", 0), "waiter got it", "main got it again"]


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_semaphore_waiter_that_leaves_is_not_served_and_next_is_not_skipped(how):
    record = []
    sem = Semaphore(0, name="s")

    def waiter(n):
        try:
            if how == "timeout" and n == 1:
                yield timeout_after(1, sem.acquire())
            else:
                yield sem.acquire()
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append((n, type(exc).__name__))
            raise
        record.append((n, "got it"))

    def main():
        tids = []
        for n in range(3):
            tids.append((yield NewTask(waiter(n))))
        yield Sleep(0.5)
        if how == "cancel":
            yield CancelTask(tids[1])
        yield Sleep(1)
        assert len(sem._waiters) == 2
        sem.release()
        sem.release()
        yield Sleep(1)
        record.append(("value", sem.value, len(sem._waiters)))

    run(main())
    left = "Cancelled" if how == "cancel" else "TaskTimeout"
    assert record == [(1, left), (0, "got it"), (2, "got it"), ("value", 0, 0)]


def test_semaphore_permit_handed_to_a_killed_task_goes_to_the_next():
    record = []
    sem = Semaphore(0)

    def waiter(n):
        yield sem.acquire()
        record.append((n, "got it"))

    def main():
        first = yield NewTask(waiter(1))
        yield NewTask(waiter(2))
        yield Sleep(1)
        sem.release()                        # handed to waiter 1, which has not run
        yield KillTask(first)
        yield Sleep(1)
        record.append(("value", sem.value))
        sem.release()
        record.append(("value", sem.value))

    run(main())
    assert record == [(2, "got it"), ("value", 0), ("value", 1)]


def test_semaphore_cancel_after_hand_keeps_the_permit():
    record = []
    sem = Semaphore(0)

    def waiter():
        yield sem.acquire()
        record.append(("got it", sem.value))
        try:
            yield Sleep(1)
        except pyos.Cancelled:
            record.append("cancelled later")
            sem.release()

    def main():
        tid = yield NewTask(waiter())
        yield Sleep(1)
        sem.release()
        yield CancelTask(tid)
        yield WaitTask(tid)
        record.append(("value", sem.value))

    run(main())
    assert record == [("got it", 0), "cancelled later", ("value", 1)]


def test_bounded_semaphore_refuses_over_release_and_bad_values():
    sem = BoundedSemaphore(1, name="b")

    def main():
        with (yield sem.acquire()):
            assert sem.locked()
        with pytest.raises(ValueError, match="released more often"):
            sem.release()
        assert sem.value == 1

    run(main())
    with pytest.raises(ValueError):
        Semaphore(-1)
    assert repr(sem) == "<BoundedSemaphore 'b' value 1>"


def test_with_without_acquire_is_a_clear_error():
    sem = Semaphore()

    def main():
        with pytest.raises(RuntimeError, match="must be acquired first"):
            with sem:
                pass
        yield

    run(main())
