"""KillTask (spec item 4): its result, and what a killed task leaves behind: no I/O wait,
no task wait, no place in the ready queue, no entry in the timer heap.

Interleavings are checked with ordered ``record`` lists; nothing sleeps over a millisecond.
"""

from __future__ import annotations

import logging

import pytest
from helpers import catch, record_steps, run, ticker_sleep, value_after

import pyos
from pyos import GetTid, KillTask, NewTask, ReadWait, Sleep, TaskError, WaitTask

TaskKilled = pyos.TaskKilled


# -- KillTask -----------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_kill_task_returns_false_for_unknown_or_finished_tasks() -> None:
    """KillTask is True for a live task (an hour-long sleeper, whose timer must not keep
    mainloop running), False for an unknown id or a finished task."""
    def sleeper():
        yield Sleep(3600)

    def main():
        done = yield NewTask(value_after(None, 0))
        live = yield NewTask(sleeper())
        yield
        return [(yield KillTask(999)), (yield KillTask(done)), (yield KillTask(live)),
                (yield KillTask(live))]

    assert pyos.run(main()) == [False, False, True, False]


def test_kill_removes_an_io_waiter(sched: pyos.Scheduler, socketpair) -> None:
    """A task killed in ReadWait stops waiting: another task can then read that socket."""
    a, b = socketpair
    record: list[object] = []

    def victim():
        try:
            yield ReadWait(a)
            record.append("victim read")
        finally:
            record.append("victim unwound")

    def main():
        tid = yield NewTask(victim())
        yield
        record.append((yield KillTask(tid)))
        b.send(b"ping")
        yield ReadWait(a)
        record.append(a.recv(10))

    run(sched, main())
    assert record == ["victim unwound", True, b"ping"]


def test_kill_removes_a_task_wait_and_wakes_its_waiters(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """A victim in WaitTask leaves that wait; its waiter gets TaskKilled (a TaskError);
    once delivered, the outcome is released, so a later WaitTask learns it is forgotten;
    the child the victim waited for is unharmed."""
    assert issubclass(TaskKilled, TaskError)
    record: list[object] = []

    def middle(child):
        try:
            yield WaitTask(child)
        finally:
            record.append("middle unwound")

    def main():
        child = yield NewTask(value_after("child value", 5))
        victim = yield NewTask(middle(child))
        yield NewTask(catch(record, WaitTask(victim), TaskKilled))
        yield
        record.append((yield KillTask(victim)))
        yield from catch(record, WaitTask(victim), pyos.OutcomeForgotten)
        record.append((yield WaitTask(child)))

    sched.new(main())
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    assert record == ["middle unwound", True, ("caught", "OutcomeForgotten"),
                      ("caught", "TaskKilled"), "child value"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("victim_first", [True, False])
def test_task_killed_in_ready_queue_never_runs_again(
    sched: pyos.Scheduler, victim_first: bool
) -> None:
    """A task killed while ready (queued, or not yet started) is never resumed."""
    record: list[object] = []

    def killer():
        record.append(("kill", (yield KillTask(victim_tid))))
        yield

    if victim_first:
        victim_tid = sched.new(record_steps(record, "victim", 5))
        sched.new(killer())
    else:
        sched.new(killer())
        victim_tid = sched.new(record_steps(record, "victim", 5))
    sched.mainloop()
    assert record == [("victim", 0), ("kill", True)] if victim_first else [("kill", True)]


def test_task_may_kill_itself(sched: pyos.Scheduler) -> None:
    """KillTask(own id) unwinds the caller at once; its waiters get TaskKilled."""
    record: list[object] = []

    def suicidal():
        try:
            yield KillTask((yield GetTid()))
            record.append("went on")
        finally:
            record.append("unwound")

    run(sched, catch(record, WaitTask(sched.new(suicidal())), TaskKilled))
    assert record == ["unwound", ("caught", "TaskKilled")]


@pytest.mark.timeout(30)
def test_killed_sleepers_do_not_stay_in_the_timer_heap(sched: pyos.Scheduler) -> None:
    """5,000 tasks in Sleep(1e6), all killed: the timer heap shrinks to a few entries at
    once, not at their deadlines; a surviving sleeper keeps its place, and new timers fire."""
    n = 5000
    record: list[object] = []

    def main():
        survivor = yield NewTask(ticker_sleep(1e6))
        tids = []
        for _ in range(n):
            tids.append((yield NewTask(ticker_sleep(1e6))))
        yield                                  # every sleeper is now in the heap
        record.append(len(sched._timers))
        killed = 0
        for tid in tids:
            killed += (yield KillTask(tid)) is True
        record.append(killed)
        record.append(len(sched._timers))
        record.append([entry[2].task.tid for entry in sched._timers.heap
                       if entry[2].task is not None])
        yield Sleep(0.001)
        record.append("woke")
        record.append((yield KillTask(survivor)))

    survivor_tid = 2                           # main is task 1
    run(sched, main())
    assert record[:2] == [n + 1, n]
    assert record[2] < n // 10                 # killed sleepers hold no memory
    assert record[3:] == [[survivor_tid], "woke", True]


def test_waiters_of_one_task_survive_the_first_waiter_being_killed(
    sched: pyos.Scheduler,
) -> None:
    """Waiters of one task share a wait record (memory: 100,000 may wait for one task).
    Killing the first waiter must leave the others waiting, described right in ps, and
    each still gets the outcome; a waiter that joins after the kill shares it too."""
    record: list[object] = []
    release = [False]

    def target():
        while not release[0]:
            yield
        return "done"

    def waiter(label, tid):
        record.append((label, (yield WaitTask(tid))))

    def main():
        tid = yield NewTask(target())
        first = yield NewTask(waiter("first", tid))
        yield NewTask(waiter("second", tid))
        yield                      # both are now blocked in WaitTask
        record.append(("kill", (yield KillTask(first))))
        yield NewTask(waiter("third", tid))
        yield
        states = sorted(i.state for i in (yield pyos.Ps()) if i.name.endswith("waiter"))
        record.append(("ps", states))
        release[0] = True

    sched.new(main())
    sched.mainloop()
    assert record == [
        ("kill", True),
        ("ps", ["waiting for task 2", "waiting for task 2"]),
        ("second", "done"),
        ("third", "done"),
    ]


def test_killing_the_waiters_of_one_task_one_by_one_is_linear() -> None:
    """Killing 20,000 WaitTask waiters of one task, one by one, touches each once: the join
    queue's storage stays bounded by the live waiters (no quadratic list removal)."""
    n = 20_000
    sizes: list[int] = []

    def target():
        yield Sleep(3600)

    def waiter(tid):
        yield WaitTask(tid)

    def main():
        t = yield NewTask(target())
        tids = []
        for _ in range(n):
            tids.append((yield NewTask(waiter(t))))
        yield
        queue = sched._joins[t]
        for i, tid in enumerate(tids):
            yield KillTask(tid)
            if i % 5000 == 4999:
                sizes.append((len(queue), len(queue._parked)))
        yield KillTask(t)

    sched = pyos.Scheduler()
    run(sched, main())
    sched.close()
    assert [live for live, _ in sizes] == [15000, 10000, 5000, 0]
    assert all(stored <= 2 * live + 64 or stored <= 65 for live, stored in sizes), sizes
