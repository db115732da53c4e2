"""Lock, RLock and Condition (pyos/locks.py), on the virtual clock.

Ordered records of who held what when; cancels (CancelTask, timeouts) and kills at
each interesting point: while parked, after the lock was handed over but before the
task ran, while a Condition waiter re-takes its lock.  Waiter counts are checked back
at zero afterwards.  Broken locks, ps and the deadlock report for lock cycles too.
"""

from __future__ import annotations

import logging
import os

import pytest
from helpers import line_of

import pyos
from pyos import (
    BrokenLock,
    CancelTask,
    Condition,
    Deadlock,
    KillTask,
    Lock,
    NewTask,
    Ps,
    RLock,
    Sleep,
    TaskTimeout,
    WaitTask,
    current_tid,
    timeout_after,
)

HERE = os.path.basename(__file__)


def run(main):
    return pyos.run(main, clock=pyos.VirtualClock())


def holder(lock, record, n, seconds=1.0):
    """Take lock, hold it for seconds, record both ends."""
    with (yield lock.acquire()):
        record.append(("got", n))
        yield Sleep(seconds)
    record.append(("released", n))


async def async_holder(lock, record, n, seconds=1.0):
    async with lock:
        record.append(("got", n))
        await Sleep(seconds)
    record.append(("released", n))


# -- The fast path -------------------------------------------------------------------------
def test_uncontended_acquire_costs_one_call_that_completes_at_once_and_no_switch(caplog):
    """In a generator task, `yield lock.acquire()` that need not wait is one system call
    that completes at once, and the task goes on (the other task runs after all ten);
    `await` and `yield from` do not reach the kernel at all (the trace shows no call)."""
    record = []
    lock = Lock("l")

    def gen_task():
        for n in range(10):
            with (yield lock.acquire()):
                record.append(n)

    def yield_from_task():
        for n in range(10, 15):
            with (yield from lock.acquire()):
                record.append(n)

    async def async_task():
        for n in range(15, 20):
            async with lock:
                record.append(n)

    def other():
        record.append("other")
        yield

    caplog.set_level("INFO", logger="pyos")
    sched = pyos.Scheduler(trace=True)
    for target in (gen_task(), other(), yield_from_task(), async_task()):
        sched.new(target)
    sched.mainloop()
    assert record == [*range(10), "other", *range(10, 20)]
    calls = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert len(calls) == 10
    assert all(call.endswith("acquire() -> resumed with <guard of Lock 'l'>") for call in calls)
    assert not lock.locked() and lock.owner is None


# -- Fairness and hand-off ----------------------------------------------------------------------
def test_waiters_are_served_in_order_and_a_release_hands_the_lock_over():
    record = []
    lock = Lock("db")

    def main():
        yield lock.acquire()
        tids = []
        for n in range(3):
            tids.append((yield NewTask(holder(lock, record, n) if n != 1
                                       else async_holder(lock, record, n))))
        yield Sleep(1)
        lock.release()     # the oldest waiter owns it at once, before it runs: trio's way
        record.append(("handed over", lock.locked(), lock.owner == tids[0]))
        yield lock.acquire()                 # no barging: main waits behind all three
        record.append(("main again", current_tid() == lock.owner))
        lock.release()

    run(main())
    assert record == [("handed over", True, True), ("got", 0), ("released", 0), ("got", 1),
                      ("released", 1), ("got", 2), ("released", 2), ("main again", True)]


@pytest.mark.parametrize("how", ["cancel", "timeout", "kill"])
def test_a_waiter_that_leaves_leaves_no_trace_and_the_next_is_not_skipped(how):
    record = []
    lock = Lock("db")

    def leaver():
        try:
            if how == "timeout":
                yield timeout_after(1, lock.acquire())
            else:
                yield lock.acquire()
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append(("left", type(exc).__name__))
            raise
        finally:
            record.append(("waiters now", len(lock._waiters)))

    def main():
        yield lock.acquire()
        yield NewTask(holder(lock, record, 0))
        tid = yield NewTask(leaver())
        yield NewTask(holder(lock, record, 2))
        yield Sleep(0.5)
        if how == "cancel":
            yield CancelTask(tid)
        elif how == "kill":
            yield KillTask(tid)
        yield Sleep(1)
        lock.release()

    run(main())
    left = {"cancel": [("left", "Cancelled")], "timeout": [("left", "TaskTimeout")],
            "kill": []}[how]
    assert record == [*left, ("waiters now", 2), ("got", 0), ("released", 0), ("got", 2),
                      ("released", 2)]
    assert len(lock._waiters) == 0 and not lock.locked()


def test_lock_handed_to_a_task_killed_before_it_runs_goes_to_the_next_waiter():
    record = []
    lock = Lock("db")

    def main():
        yield lock.acquire()
        first = yield NewTask(holder(lock, record, 1))
        yield NewTask(holder(lock, record, 2))
        yield Sleep(1)
        lock.release()                   # handed to task `first`, which has not run yet
        yield KillTask(first)
        yield Sleep(0)
        record.append(("owner", lock.owner))

    run(main())
    assert record == [("got", 2), ("owner", 3), ("released", 2)]
    assert not lock.locked()


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_lock_handed_over_is_kept_when_a_cancel_follows(how):
    """Cancelled after the hand-off but before it ran, the task owns the lock; the cancel
    hits at its next blocking point, inside the with block, which releases it."""
    record = []
    lock = Lock("db")

    def waiter():
        try:
            with (yield timeout_after(1.5)):
                with (yield lock.acquire()):
                    record.append(("got", lock.owner == current_tid()))
                    yield Sleep(1)
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append((type(exc).__name__, lock.locked()))

    def main():
        yield lock.acquire()
        tid = yield NewTask(waiter())
        yield Sleep(1)
        if how == "timeout":
            clock.advance(0.5)               # the deadline is due, but not yet seen
        lock.release()
        if how == "cancel":
            yield CancelTask(tid)
        yield WaitTask(tid)

    clock = pyos.VirtualClock()
    pyos.run(main(), clock=clock)
    assert record == [("got", True), ("Cancelled" if how == "cancel" else "TaskTimeout",
                                      False)]


def test_release_and_acquire_errors():
    lock = Lock("db")

    def other():
        with pytest.raises(RuntimeError, match="cannot release Lock 'db': task 1 holds it"):
            lock.release()
        yield

    def main():
        with pytest.raises(RuntimeError, match="it is not held"):
            lock.release()
        yield lock.acquire()
        with pytest.raises(RuntimeError, match="already holds"):
            yield lock.acquire()
        yield WaitTask((yield NewTask(other())))
        lock.release()
        with pytest.raises(RuntimeError, match="must be acquired first"):
            with lock:
                pass

    run(main())


# -- Broken locks --------------------------------------------------------------------------
def owner_that(how):
    def task():
        yield lock_under_test.acquire()
        yield Sleep(1)
        if how == "fails":
            raise ValueError("oops")
        if how == "is cancelled":
            yield Sleep(10)
    return task()


lock_under_test = Lock("db")


@pytest.mark.parametrize(("how", "says"), [("returns", "it returned"),
                                           ("fails", "it raised ValueError('oops')"),
                                           ("is cancelled", "it was cancelled"),
                                           ("is killed", "it was killed")])
def test_owner_ending_holding_the_lock_breaks_it(how, says, caplog):
    global lock_under_test
    lock_under_test = lock = Lock("db")
    record = []

    def waiter(n):
        try:
            yield lock.acquire()
        except BrokenLock as exc:
            record.append((n, str(exc)))

    async def async_waiter(n):
        try:
            await lock.acquire()
        except BrokenLock as exc:
            record.append((n, str(exc)))

    def main():
        tid = yield NewTask(owner_that(how))
        yield NewTask(waiter(1))
        yield NewTask(async_waiter(2))
        yield Sleep(0.5)
        if how == "is cancelled":
            yield CancelTask(tid)
        elif how == "is killed":
            yield KillTask(tid)
        yield Sleep(2)
        yield from waiter(3)                 # a later acquirer
        record.append(("waiters", len(lock._waiters)))

    run(main())
    broken = f"Lock 'db' is broken: task 2 ended holding it ({says})"
    assert record == [(1, broken), (2, broken), (3, broken), ("waiters", 0)]
    assert repr(lock) == "<Lock 'db' broken>"


def test_lock_passed_down_a_queue_breaks_only_when_its_current_owner_ends_holding_it():
    """At each contended release the exit hook goes on to the new owner: the owners who
    released it end without harm, and the one that ends holding it breaks it."""
    lock, record = Lock("db"), []

    def passer(n):
        yield lock.acquire()
        record.append(("got", n))
        yield Sleep(1)
        lock.release()            # handed to the next waiter; this task then ends

    def keeper():
        yield lock.acquire()
        record.append(("got", "keeper"))   # and returns, holding it

    def last():
        try:
            yield lock.acquire()
        except BrokenLock as exc:
            record.append(str(exc))

    def main():
        for target in (passer(1), passer(2), keeper(), last()):
            yield NewTask(target)
        yield Sleep(10)

    run(main())
    assert record == [("got", 1), ("got", 2), ("got", "keeper"),
                      "Lock 'db' is broken: task 4 ended holding it (it returned)"]


def test_owner_gone_before_anyone_waited_is_found_by_the_next_acquirer():
    lock = Lock("db")

    def grab():
        yield lock.acquire()

    def main():
        yield WaitTask((yield NewTask(grab())))
        with pytest.raises(BrokenLock, match=r"task 2 ended holding it$"):
            yield lock.acquire()

    run(main())


def test_owner_killed_inside_with_releases_the_lock_rather_than_breaking_it(caplog):
    record = []
    lock = Lock("db")

    def main():
        tid = yield NewTask(holder(lock, record, 1, seconds=10))
        yield NewTask(holder(lock, record, 2))
        yield Sleep(1)
        yield KillTask(tid)
        yield Sleep(5)

    run(main())
    assert record == [("got", 1), ("got", 2), ("released", 2)]
    assert "raised while being unwound" not in caplog.text


# -- ps and the deadlock report ------------------------------------------------------------
def test_ps_says_who_holds_the_lock():
    lock = Lock("db")

    def main():
        yield lock.acquire()
        yield NewTask(holder(lock, [], 1), name="waiter")
        yield Sleep(1)
        state = {i.name: i.state for i in (yield Ps())}["waiter"]
        lock.release()
        return state

    assert run(main()) == "waiting for Lock 'db' held by task 1"


def lock_pair(first, second):
    with (yield first.acquire()):
        yield Sleep(1)
        with (yield second.acquire()):
            pass


def test_deadlock_report_prints_a_lock_cycle():
    a, b = Lock("A"), Lock("B")
    sched = pyos.Scheduler(clock=pyos.VirtualClock())
    sched.new(lock_pair(a, b), name="one")
    sched.new(lock_pair(b, a), name="two")
    with pytest.raises(Deadlock) as info:
        sched.mainloop()
    sched.close()
    at = f"at {HERE}:{line_of(lock_pair, 'with (yield second.acquire())')}:lock_pair"
    assert str(info.value).splitlines()[1:] == [
        "wait-for cycle: task 1 (one) -> task 2 (two) -> task 1 (one)",
        f"  task 1 (one) waiting for Lock 'B' held by task 2 {at}",
        f"  task 2 (two) waiting for Lock 'A' held by task 1 {at}",
    ]


# -- RLock ---------------------------------------------------------------------------------
def test_rlock_is_reentrant_for_its_owner_only():
    record = []
    lock = RLock("r")

    def main():
        with (yield lock.acquire()):
            with (yield lock.acquire()):
                yield NewTask(holder(lock, record, 2))
                yield Sleep(1)
                record.append(("inner", lock.owner))
            record.append(("outer still holds", lock.owner == current_tid()))
            yield Sleep(1)
        record.append("main released")
        yield Sleep(2)

    run(main())
    assert record == [("inner", 1), ("outer still holds", True), "main released",
                      ("got", 2), ("released", 2)]


def test_rlock_release_by_another_task_and_broken_rlock():
    lock = RLock("r")

    def grab():
        yield lock.acquire()
        yield lock.acquire()

    def main():
        yield WaitTask((yield NewTask(grab())))
        with pytest.raises(BrokenLock):
            yield lock.acquire()

    run(main())


# -- Condition -----------------------------------------------------------------------------
def test_condition_notify_wakes_waiters_in_order_each_holding_the_lock():
    record = []
    cond = Condition(name="c")
    items = []

    def consumer(n):
        with (yield cond.acquire()):
            assert (yield cond.wait_for(lambda: items)) is items   # the predicate's value
            record.append((n, items.pop(0), cond.lock.owner == current_tid()))

    async def async_consumer(n):
        async with cond:
            await cond.wait()
            record.append((n, items.pop(0), cond.lock.owner == current_tid()))

    def main():
        for n in range(3):
            yield NewTask(consumer(n) if n != 1 else async_consumer(n), name=f"c{n}")
        yield Sleep(1)
        record.append({i.name: i.state for i in (yield Ps())}["c0"])
        with (yield cond.acquire()):
            items.extend("ab")
            cond.notify(2)
            record.append("notified 2")
        yield Sleep(1)
        with (yield cond.acquire()):
            items.append("c")
            cond.notify_all()
        yield Sleep(1)
        record.append(len(cond._waiters))

    run(main())
    assert record == ["waiting for Condition 'c' to be notified", "notified 2",
                      (0, "a", True), (1, "b", True), (2, "c", True), 0]


def test_condition_requires_the_lock():
    cond = Condition()

    def main():
        with pytest.raises(RuntimeError, match="without holding its lock"):
            yield cond.wait()
        with pytest.raises(RuntimeError, match="without holding its lock"):
            cond.notify()
        with pytest.raises(RuntimeError, match="without holding its lock"):
            yield cond.wait_for(lambda: True)

    run(main())


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_condition_wait_cancelled_holds_the_lock_again(how):
    record = []
    cond = Condition(name="c")

    def waiter():
        with (yield cond.acquire()):
            try:
                if how == "timeout":
                    yield timeout_after(1, cond.wait())
                else:
                    yield cond.wait()
            except (pyos.Cancelled, TaskTimeout) as exc:
                record.append((type(exc).__name__, cond.lock.owner == current_tid()))
                raise

    def main():
        tid = yield NewTask(waiter())
        yield Sleep(0.5)
        yield cond.acquire()                 # hold the lock: the waiter must wait for it
        if how == "cancel":
            yield CancelTask(tid)
        yield Sleep(2)
        record.append("main releases")
        cond.release()
        with pytest.raises(pyos.TaskError):
            yield WaitTask(tid)
        record.append((len(cond._waiters), cond.locked()))

    run(main())
    name = "Cancelled" if how == "cancel" else "TaskTimeout"
    assert record == ["main releases", (name, True), (0, False)]


@pytest.mark.parametrize("when", ["before it runs", "while it re-takes the lock"])
def test_notified_wait_returns_normally_and_the_cancel_hits_later(when):
    record = []
    cond = Condition(name="c")

    def waiter():
        with (yield cond.acquire()):
            record.append(("wait returned", (yield cond.wait())))
            try:
                yield Sleep(1)
            except pyos.Cancelled:
                record.append(("cancelled later, holding the lock", cond.locked()))
                raise

    def main():
        tid = yield NewTask(waiter())
        yield Sleep(1)
        with (yield cond.acquire()):
            cond.notify()
            if when == "before it runs":
                yield CancelTask(tid)
            yield Sleep(1)                   # the waiter parks to take the lock back
            if when == "while it re-takes the lock":
                record.append({i.tid: i.state for i in (yield Ps())}[tid])
                yield CancelTask(tid)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)
        record.append(cond.locked())

    run(main())
    expected = [("wait returned", True), ("cancelled later, holding the lock", True), False]
    if when == "while it re-takes the lock":
        expected.insert(0, "waiting for Lock 'c' held by task 1")
    assert record == expected


def test_notice_for_a_waiter_killed_before_it_runs_goes_to_the_next():
    record = []
    cond = Condition(name="c")

    def waiter(n):
        with (yield cond.acquire()):
            yield cond.wait()
            record.append(("woke", n))

    def main():
        first = yield NewTask(waiter(1))
        yield NewTask(waiter(2))
        yield Sleep(1)
        with (yield cond.acquire()):
            cond.notify()
            yield KillTask(first)
        yield Sleep(1)
        record.append(len(cond._waiters))

    run(main())
    assert record == [("woke", 2), 0]


def test_killed_in_condition_wait_inside_with_unwinds_quietly(caplog):
    cond = Condition(name="c")

    def waiter():
        with (yield cond.acquire()):
            yield cond.wait()

    def main():
        tid = yield NewTask(waiter())
        yield Sleep(1)
        yield KillTask(tid)
        with (yield cond.acquire()):         # not broken: the waiter did not hold it
            pass

    with caplog.at_level(logging.WARNING, logger="pyos"):
        run(main())
    assert caplog.text == ""


def test_condition_over_an_rlock_restores_its_depth():
    record = []
    cond = Condition(RLock("r"))

    def waiter():
        with (yield cond.acquire()):
            with (yield cond.acquire()):
                yield cond.wait()
                record.append(cond.lock._count)
            record.append(cond.lock._count)

    def main():
        yield NewTask(waiter())
        yield Sleep(1)
        with (yield cond.acquire()):
            cond.notify()
        yield Sleep(1)

    run(main())
    assert record == [2, 1]
    assert cond.name == "r"
