"""WaitQueue (issue 10): the one wait primitive, and what ps, the trace and the deadlock
report say about tasks parked in it.

Parking is first in, first out; waking is a plain call usable anywhere (a task, a
finally block, a user-defined system call); a handed-over value is never lost; a cancel
takes a parked task out in O(1) and leaves no slot behind.  Time is virtual.
"""

from __future__ import annotations

import gc
import logging
import weakref

import pytest

import pyos
from pyos import (
    Cancelled,
    CancelTask,
    Deadlock,
    KillTask,
    NewTask,
    OutcomeForgotten,
    Ps,
    Sleep,
    SystemCall,
    TaskError,
    TaskTimeout,
    VirtualClock,
    WaitQueue,
    WaitTask,
    format_ps,
    timeout_after,
)


def parker(q: WaitQueue, record: list, label: object):
    record.append((label, (yield q.park())))


def run(main) -> VirtualClock:
    clock = VirtualClock()
    pyos.run(main, clock=clock)
    return clock


# -- Parking and waking ---------------------------------------------------------------------
def test_first_in_first_out_with_each_value() -> None:
    q, record = WaitQueue("q"), []

    def main():
        for label in "abc":
            yield NewTask(parker(q, record, label))
        yield
        for value in (1, 2, 3):
            q.wake(value)
            yield Sleep(0)

    run(main())
    assert record == [("a", 1), ("b", 2), ("c", 3)]


def test_wake_returns_how_many_it_woke_and_len_counts_the_parked() -> None:
    q, record = WaitQueue("q"), []

    def main():
        counts = [len(q), q.wake(), q.wake_all()]
        for label in "abcd":
            yield NewTask(parker(q, record, label))
        yield
        counts.append(len(q))
        counts.append(q.wake("x", n=2))
        counts.append(len(q))
        counts.append(q.wake("y", n=5))
        counts.append(q.wake("z", n=0))
        counts.append(len(q))
        return counts

    assert pyos.run(main(), clock=VirtualClock()) == [0, 0, 0, 4, 2, 2, 2, 0, 0]
    assert record == [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]


def test_wake_all_wakes_every_parked_task_with_one_value() -> None:
    q, record = WaitQueue(), []

    def main():
        for label in range(5):
            yield NewTask(parker(q, record, label))
        yield
        record.append(("woke", q.wake_all("go"), len(q)))

    run(main())
    assert record == [("woke", 5, 0), *[(i, "go") for i in range(5)]]


def test_async_tasks_park_with_await() -> None:
    q, record = WaitQueue("q"), []

    async def waiter(label):
        record.append((label, await q.park()))

    async def main():
        await NewTask(waiter("a"))
        await NewTask(waiter("b"))
        await Sleep(0)
        record.append(q.wake_all("v"))

    run(main())
    assert record == [2, ("a", "v"), ("b", "v")]


class WakeCall(SystemCall):
    """A user-defined call that wakes a queue from inside the kernel."""

    def __init__(self, q: WaitQueue, value: object) -> None:
        self.q, self.value = q, value

    def handle(self) -> None:
        self.task.sendval = self.q.wake(self.value)
        self.sched.schedule(self.task)


def test_wake_from_a_finally_block_and_from_a_user_defined_call() -> None:
    """A killed task's finally block wakes one waiter; a user call wakes the other."""
    q, record = WaitQueue("q"), []

    def holder():
        try:
            yield Sleep(3600)
        finally:
            record.append(("finally woke", q.wake("from finally")))

    def main():
        yield NewTask(parker(q, record, "a"))
        yield NewTask(parker(q, record, "b"))
        h = yield NewTask(holder())
        yield
        yield KillTask(h)
        record.append(("call woke", (yield WakeCall(q, "from call"))))

    run(main())
    assert record == [("finally woke", 1), ("call woke", 1), ("a", "from finally"),
                      ("b", "from call")]


# -- Leaving the queue ----------------------------------------------------------------------
def test_a_cancelled_waiter_is_skipped_and_leaves_no_slot() -> None:
    """Cancel the middle one: len drops at once, the others are woken in order."""
    q, record = WaitQueue("q"), []

    def main():
        tids = []
        for label in "abc":
            tids.append((yield NewTask(parker(q, record, label))))
        yield
        yield CancelTask(tids[1])
        record.append(len(q))
        record.append(q.wake_all("v"))

    run(main())
    assert record == [2, 2, ("a", "v"), ("c", "v")]


def test_a_cancelled_waiter_that_parks_again_goes_to_the_back_once() -> None:
    """It caught the Cancelled and parked again before its old place came up: counted
    once, woken once, after those who stayed."""
    q, record = WaitQueue("q"), []

    def stubborn():
        try:
            yield q.park()
        except Cancelled:
            record.append(("a", "again", (yield q.park())))

    def main():
        a = yield NewTask(stubborn())
        yield NewTask(parker(q, record, "b"))
        yield
        yield CancelTask(a)
        yield Sleep(0)        # a parks again
        record.append(len(q))
        record.append(q.wake("first"))
        record.append(len(q))
        record.append(q.wake_all("second"))
        record.append(len(q))

    run(main())
    assert record == [2, 1, 1, 1, 0, ("b", "first"), ("a", "again", "second")]


def test_a_waiter_that_left_and_joined_again_does_not_swallow_an_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Join entries, after waiters left in every way (one twice): none is left, so the
    failure is logged and kept for a later WaitTask, not handed to nobody."""
    record = []

    def failing():
        yield Sleep(5)
        raise ValueError("boom")

    def stubborn(tid):
        try:
            yield WaitTask(tid)
        except Cancelled:
            yield WaitTask(tid)

    def main():
        child = yield NewTask(failing(), name="child")
        w1 = yield NewTask(stubborn(child))
        w2 = yield NewTask(stubborn(child))
        yield
        yield CancelTask(w1)      # w1 leaves from the front; then parks again, at the back
        yield Sleep(0)
        yield CancelTask(w2)      # not the newest: marked
        yield CancelTask(w1)      # the newest
        yield Sleep(1)
        yield CancelTask(w2)      # w2 parked again too, and now leaves for good
        yield Sleep(10)
        try:
            yield WaitTask(child)
        except TaskError as exc:
            record.append(repr(exc.__cause__))
        except OutcomeForgotten:
            record.append("outcome lost")

    run(main())
    assert record == ["ValueError('boom')"]
    assert [r.getMessage() for r in caplog.records] == ["<Task 2 'child'> failed"]


def test_cancelling_100000_parked_waiters_one_by_one_compacts_the_queue() -> None:
    """Oldest first, the case the O(1) fast path does not cover: the entries left behind
    are reclaimed as they go (never more than about twice the parked count), and each
    cancel leaves exactly one fewer."""
    n, q, record = 100_000, WaitQueue("many"), []
    sched = pyos.Scheduler(clock=VirtualClock())

    def waiter():
        try:
            yield q.park()
        except Cancelled:
            pass

    def main():
        tids = []
        for _ in range(n):
            tids.append((yield NewTask(waiter())))
        yield
        record.append(len(q))
        worst = 0
        for i, tid in enumerate(tids):
            yield CancelTask(tid)
            if len(q) != n - 1 - i:
                record.append(("len", i, len(q)))
                break
            worst = max(worst, len(q._parked) - q._head - 2 * len(q))
        record.append((len(q), worst <= 64, len(q._parked) - q._head <= 64))

    sched.new(main())
    sched.mainloop()
    assert record == [n, (0, True, True)]


# -- hand(): a value that must not be lost --------------------------------------------------
def test_hand_gives_the_value_to_the_oldest_waiter() -> None:
    q, record, back = WaitQueue("lock"), [], []

    def main():
        record.append(q.hand("nobody", back.append))
        yield NewTask(parker(q, record, "a"))
        yield NewTask(parker(q, record, "b"))
        yield
        record.append(q.hand("token", back.append))
        record.append(len(q))
        q.wake_all()

    run(main())                      # (main is task 1: a is 2, b is 3)
    assert record == [None, 2, 1, ("a", "token"), ("b", None)]
    assert back == []


def test_a_cancel_after_the_hand_off_does_not_take_it_back() -> None:
    """The task gets the value; the cancel waits for its next blocking point; nothing is
    given back."""
    q, record, back = WaitQueue("lock"), [], []

    def taker():
        record.append(("got", (yield q.park())))
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")
            raise

    def main():
        tid = yield NewTask(taker())
        yield
        q.hand("token", back.append)
        record.append((yield CancelTask(tid)))

    run(main())
    assert record == [True, ("got", "token"), "cancelled"]
    assert back == []


@pytest.mark.parametrize("when", ["before it runs", "after it ran"])
def test_a_kill_before_the_taker_runs_gives_the_value_back_once(when: str) -> None:
    q, record, back = WaitQueue("lock"), [], []

    def taker():
        try:
            record.append(("got", (yield q.park())))
            yield Sleep(3600)
        finally:
            record.append("unwound")

    def main():
        tid = yield NewTask(taker())
        yield
        q.hand("token", back.append)
        if when == "after it ran":
            yield Sleep(0)
        yield KillTask(tid)
        yield KillTask(tid)

    run(main())
    if when == "before it runs":
        assert (record, back) == (["unwound"], ["token"])
    else:
        assert (record, back) == ([("got", "token"), "unwound"], [])


def test_hand_skips_a_waiter_that_was_cancelled() -> None:
    q, record, back = WaitQueue("lock"), [], []

    def main():
        a = yield NewTask(parker(q, record, "a"))
        yield NewTask(parker(q, record, "b"))
        yield
        yield CancelTask(a)
        record.append(q.hand("token", back.append))

    run(main())                      # (main is task 1: a is 2, b is 3)
    assert record == [3, ("b", "token")]
    assert back == []



def test_a_handed_value_is_not_kept_once_its_taker_has_run() -> None:
    """The kernel's record of a hand-off (to give the value back if the taker is killed
    before it runs) must not keep the value alive once the taker has seen it: a worker
    that dropped its last 100 MB job and waits for the next one holds nothing."""
    class Job:
        pass

    q, record = WaitQueue("jobs"), []

    def worker():
        job = yield q.park()
        record.append(weakref.ref(job))
        del job
        yield Sleep(10)          # alive, and no longer holding the job

    def main():
        yield NewTask(worker())
        yield
        q.hand(Job(), lambda job: None)
        yield Sleep(1)           # the worker has run and dropped it
        gc.collect()
        record.append(record[0]() is None)

    run(main())
    assert record[1:] == [True]

# -- Deadlock, ps and the trace -------------------------------------------------------------
def test_tasks_parked_where_nothing_can_wake_them_are_a_deadlock_naming_the_queue() -> None:
    q = WaitQueue("jobs")

    def main():
        yield NewTask(parker(q, [], "a"), name="worker")
        yield q.park()

    sched = pyos.Scheduler(clock=VirtualClock())
    sched.new(main(), name="main")
    with pytest.raises(Deadlock) as info:
        sched.mainloop()
    lines = str(info.value).splitlines()
    assert lines[0] == "no task can ever run again: 2 blocked with nothing to wake them"
    assert lines[1].startswith("  task 1 (main) waiting on WaitQueue 'jobs' at ")
    assert lines[2].startswith("  task 2 (worker) waiting on WaitQueue 'jobs' at ")


def test_a_task_parked_under_a_deadline_is_not_deadlocked() -> None:
    q = WaitQueue("jobs")

    def main():
        try:
            yield timeout_after(30, q.park())
        except TaskTimeout:
            return "timed out"

    clock = VirtualClock()
    assert pyos.run(main(), clock=clock) == "timed out"
    assert clock.time() == 30.0


def test_ps_says_what_a_parked_task_waits_on_and_when_its_deadline_fires() -> None:
    """Ps(), sched.ps() and format_ps all show the queue's name and the deadline."""
    q, unnamed, seen = WaitQueue("connection-pool"), WaitQueue(), []
    sched = pyos.Scheduler(clock=VirtualClock())

    def worker():
        yield Sleep(1)
        yield timeout_after(5, q.park())

    def main():
        yield NewTask(worker(), name="worker")
        yield NewTask(parker(unnamed, [], "u"), name="anon")
        yield Sleep(2)
        seen.append({i.name: i.state for i in (yield Ps())})
        seen.append(format_ps(sched.ps()))
        q.wake()
        unnamed.wake()

    sched.new(main(), name="main")
    sched.mainloop()
    states, table = seen
    assert states["worker"] == "waiting on WaitQueue 'connection-pool', deadline in 4.000s"
    assert states["anon"] == f"waiting on WaitQueue at {id(unnamed):#x}"
    assert states["main"] == "running"
    assert "waiting on WaitQueue 'connection-pool', deadline in 4.000s" in table


@pytest.mark.parametrize("how", ["PYOS_TRACE", "trace=True"])
def test_the_trace_says_what_a_parked_task_waits_on_and_when_its_deadline_fires(
    how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PYOS_TRACE=1 or trace=True: the park line names the queue and the deadline."""
    caplog.set_level(logging.INFO, logger="pyos")
    options = {"trace": True} if how == "trace=True" else {}
    monkeypatch.setenv("PYOS_TRACE", "1" if how == "PYOS_TRACE" else "")
    q = WaitQueue("jobs")

    def worker():
        yield timeout_after(5, q.park())

    def main():
        yield NewTask(worker(), name="worker")
        yield Sleep(1)
        q.wake("job")

    pyos.run(main(), clock=VirtualClock(), **options)
    lines = [r.getMessage() for r in caplog.records]
    assert ("<Task 2 'worker'> park(WaitQueue 'jobs') -> waiting on WaitQueue 'jobs', "
            "deadline in 5.000s") in lines, lines


def test_a_user_defined_call_may_park_a_task_in_a_queue() -> None:
    """ParkIn uses the kernel's park: the task then waits like any other (ps, wake)."""
    q, record = WaitQueue("q"), []

    class ParkIn(SystemCall):
        def handle(self) -> None:
            self.sched.park(self.task, q)

    def waiter():
        record.append((yield ParkIn()))

    def main():
        yield NewTask(waiter(), name="w")
        yield NewTask(waiter(), name="x")
        yield
        record.append([i.state for i in (yield Ps()) if i.name in "wx"])
        record.append(q.wake_all("v"))

    run(main())
    assert record == [["waiting on WaitQueue 'q'"] * 2, 2, "v", "v"]
