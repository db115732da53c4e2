"""The kernel: task ids, pyos.run, round-robin order, calls per turn, idling, scale.

Covers the Scheduler/run part of the spec and items 7 and 9, plus the calls-per-turn
rule.  Faults and the end of mainloop are in test_faults.py, the bookkeeping of outcomes
nobody collects in test_outcomes.py.  Orderings are checked exactly with ``record``
lists; no test asserts on speed.
"""

from __future__ import annotations

import time

import pytest
from helpers import noop, record_steps, run

import pyos
from pyos import GetTid, NewTask, ReadWait, Sleep, SystemCall, WaitTask


class Echo(SystemCall):
    """A user-defined call that completes at once and returns its argument."""

    def __init__(self, value: object) -> None:
        self.value = value

    def handle(self) -> None:
        self.task.sendval = self.value
        self.sched.schedule(self.task)


# -- Scheduler(), new(), mainloop(), task ids -------------------------------------------
def test_each_scheduler_numbers_its_tasks_from_one() -> None:
    """sched.new returns 1, 2, ... per scheduler: the id GetTid reports inside the task."""
    first, second = pyos.Scheduler(), pyos.Scheduler()
    seen: list[int] = []

    def report():
        seen.append((yield GetTid()))

    try:
        first.mainloop()  # nothing to run: returns at once
        assert [first.new(report()), first.new(report()), second.new(report())] == [1, 2, 1]
        first.mainloop()
        second.mainloop()
    finally:
        first.close()
        second.close()
    assert seen == [1, 2, 1]


def test_task_ids_are_never_reused(sched: pyos.Scheduler) -> None:
    """Finished tasks' ids are not handed out again, within a run or after it."""
    tids: list[int] = []

    def spawner():
        for _ in range(50):
            tids.append((yield NewTask(noop())))
            yield

    tids.append(sched.new(spawner()))
    sched.mainloop()
    tids.append(sched.new(noop()))
    sched.mainloop()
    assert len(tids) == 52 and tids == sorted(set(tids))  # distinct and increasing


def test_new_rejects_non_coroutines_and_uses_no_id(sched: pyos.Scheduler) -> None:
    """sched.new(x) raises TypeError for a non-generator; no task is made, no id used."""
    for bad in (42, noop, None):
        with pytest.raises(TypeError):
            sched.new(bad)
    assert sched.new(noop()) == 1
    sched.mainloop()


# -- pyos.run -----------------------------------------------------------------------------
def test_run_returns_the_targets_value_after_all_it_spawned() -> None:
    """run() returns target's value, but only once every task it started has finished."""
    record: list[object] = []

    def main():
        yield NewTask(record_steps(record, "child", 5))
        return "main done"

    assert pyos.run(main()) == "main done"
    assert record == [("child", i) for i in range(5)]


def test_run_raises_the_original_exception() -> None:
    """run() raises the very exception object the target raised, not a wrapper."""
    raised: list[BaseException] = []

    async def main():
        await GetTid()
        error = KeyError("original")
        raised.append(error)
        raise error

    with pytest.raises(KeyError) as info:
        pyos.run(main())
    assert info.value is raised[0]


# -- Ordering -----------------------------------------------------------------------------
def test_ready_tasks_run_round_robin_in_fifo_order(sched: pyos.Scheduler) -> None:
    """Each bare yield sends a task to the back of the queue: a, b, c, a, b, c, ..."""
    record: list[object] = []
    run(sched, *(record_steps(record, label, 3) for label in "abc"))
    assert record == [(label, i) for i in range(3) for label in "abc"]


def test_immediate_calls_continue_the_turn_and_bare_yields_end_it(sched: pyos.Scheduler) -> None:
    """Calls that complete at once (NewTask, GetTid, a user call) let the caller go on; a bare
    yield sends it behind the others, and behind the task it spawned."""
    record: list[object] = []

    def main():
        yield NewTask(record_steps(record, "child", 1))
        record.append(("main", (yield GetTid()), (yield Echo("echo"))))
        yield
        record.append("main again")

    run(sched, main(), record_steps(record, "other", 2))
    assert record == [("main", 1, "echo"), ("other", 0), ("child", 0), "main again", ("other", 1)]



def test_a_bare_yield_evaluates_to_none_after_a_wait_that_returned_a_value(
    sched: pyos.Scheduler,
) -> None:
    """The README's table: a bare ``yield`` evaluates to None.  Not to whatever the task's
    last wait was woken with (an item, a lock's guard, another task's result), neither in
    the task's own frame nor in a sub-coroutine it called."""
    q, record = pyos.WaitQueue(), []

    def sub():
        record.append(("sub", (yield)))

    def taker():
        record.append((yield q.park()))
        record.append((yield))
        yield sub()
        record.append((yield WaitTask(tid)))
        record.append((yield))

    def giver():
        yield
        q.wake("item")
        return "result"

    tid = sched.new(giver())
    sched.new(taker())
    sched.mainloop()
    assert record == ["item", None, ("sub", None), "result", None]


def test_waiting_to_read_again_evaluates_to_none(sched: pyos.Scheduler, socketpair) -> None:
    """``yield ReadWait(sock)`` evaluates to None, also when the run loop's shortcut for a
    socket reading again serves it (epoll: the registration stands since the last read)."""
    a, b = socketpair
    q, record = pyos.WaitQueue(), []

    def reader():
        yield ReadWait(a)
        record.append(a.recv(10))
        record.append((yield q.park()))
        record.append((yield ReadWait(a)))
        record.append(a.recv(10))

    def writer():
        b.send(b"one")
        yield Sleep(0.01)
        q.wake("value")
        yield Sleep(0.01)
        b.send(b"two")

    run(sched, reader(), writer())
    assert record == [b"one", "value", None, b"two"]

@pytest.mark.parametrize("budget", [None, 5])
def test_calls_per_turn_limits_a_run_of_immediate_calls(
    sched: pyos.Scheduler, budget: int | None
) -> None:
    """After calls_per_turn immediate calls in a row the task yields, then goes on intact."""
    if budget is not None:
        sched.calls_per_turn = budget
    limit = sched.calls_per_turn
    assert pyos.Scheduler.calls_per_turn == 64
    record: list[object] = []

    def caller():
        for i in range(2 * limit + 10):
            record.append((yield Echo(i)))

    run(sched, caller(), record_steps(record, "b", 1))
    assert record == [*range(limit), ("b", 0), *range(limit, 2 * limit + 10)]


# -- 7. Idling ----------------------------------------------------------------------------
def test_idle_kernel_blocks_instead_of_spinning(sched: pyos.Scheduler, socketpair) -> None:
    """One task waits to read, one sleeps 0.3 s then writes: almost no CPU meanwhile."""
    a, b = socketpair
    got: list[bytes] = []

    def reader():
        yield pyos.ReadWait(a)
        got.append(a.recv(10))

    def writer():
        yield Sleep(0.3)
        b.send(b"wake")

    sched.new(reader())
    sched.new(writer())
    wall, cpu = time.perf_counter(), time.process_time()
    sched.mainloop()
    assert got == [b"wake"] and time.perf_counter() - wall >= 0.3
    assert time.process_time() - cpu < 0.1


# -- 9. Scale -----------------------------------------------------------------------------
def test_fifty_thousand_tasks_run_to_completion() -> None:
    """50,000 tasks created up front all run every step."""
    count = [0]

    def worker():
        count[0] += 1
        yield
        count[0] += 1

    sched = pyos.Scheduler()
    try:
        for _ in range(50_000):
            sched.new(worker())
        sched.mainloop()
    finally:
        sched.close()
    assert count[0] == 100_000


def test_sub_coroutine_calls_count_against_the_turn(sched: pyos.Scheduler) -> None:
    """Issue 9, fault 4: a loop of `yield helper()` calls that never block gives up the
    processor after calls_per_turn of them, as a run of immediate system calls does."""
    record: list[object] = []

    def helper(i):
        return i
        yield  # (a generator)

    def caller():
        for i in range(200):
            yield helper(i)
        record.append("caller done")

    def other():
        record.append("other ran")
        yield

    sched.new(caller())
    sched.new(other())
    sched.mainloop()
    assert record == ["other ran", "caller done"]


def test_a_scheduler_runs_in_one_thread_at_a_time() -> None:
    """Issue 9, fault 10: a second thread calling mainloop() on a scheduler already running
    gets a clear RuntimeError (the guard is not per thread)."""
    import threading

    sched = pyos.Scheduler()
    started, errors = threading.Event(), []

    def main():
        started.set()
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:   # until the other thread tried
            yield pyos.Sleep(0.001)

    def second() -> None:
        started.wait(5)
        try:
            sched.mainloop()
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=second)
    sched.new(main())
    thread.start()
    sched.mainloop()
    thread.join(5)
    sched.close()
    assert len(errors) == 1 and "another thread" in errors[0]


def test_a_bare_yield_evaluates_to_none_whatever_came_before() -> None:
    """A bare yield gives up the processor and evaluates to None, as the README says: not
    to the answer of the system call or the sub-call before it."""
    def sub():
        return "sub's value"
        yield

    def main():
        tid = yield pyos.GetTid()
        after_call = yield
        value = yield sub()
        after_sub = yield
        return tid, after_call, value, after_sub

    assert pyos.run(main()) == (1, None, "sub's value", None)


def test_a_scheduler_has_few_enough_attributes_for_fast_access() -> None:
    """CPython 3.11 specializes ``self.x`` and ``self.method()`` only on an instance of
    fewer than 30 attributes; past that each is a dict lookup, paid by every cycle of the
    main loop.  Options and rarely used state are set only when given: a kernel with a
    thread pool's (max_threads, at_close) stays under the limit while it runs.  When a new
    attribute fails this, make it a class attribute set only when used, as those are."""
    sched = pyos.Scheduler(max_threads=2)
    sched.at_close(lambda: None)

    def main():
        yield pyos.Sleep(0)
        return len(vars(sched))

    try:
        fresh = len(vars(sched))
        sched._main_tid = sched.new(main())
        sched.mainloop()
        assert sched._outcomes.main[0] == fresh < 30, sorted(vars(sched))
    finally:
        sched.close()
