"""run_in_thread (pyos/threads.py), and the scheduler's part: max_threads and at_close.

Worker threads are real, so a test that needs fn to be busy blocks it on a
threading.Event that a task sets, never on a guess of how long it takes; every wait is
bounded.  Deadlines that a real thread must outlive are short real timeouts, not the
virtual clock: the kernel cannot know how long a thread will take.
"""

from __future__ import annotations

import functools
import os
import threading

import pytest
from helpers import run_watched

import pyos
from pyos import CancelTask, KillTask, NewTask, Sleep, WaitTask, run_in_thread

LIMIT = 5.0   # no event in these tests should take anywhere near this long


def workers() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pyos-worker")]


def gate():
    """(fn, started, release): fn signals it started, then blocks until released."""
    started, release, done = threading.Event(), threading.Event(), []

    def blocker(value="value"):
        started.set()
        release.wait(LIMIT)
        done.append(value)
        return value

    blocker.done = done
    return blocker, started, release


def wait_started(started: threading.Event):
    """A task step: give up the CPU until the worker has started fn."""
    for _ in range(10_000):
        if started.is_set():
            return
        yield Sleep(0.001)
    raise AssertionError("fn never started")


# -- Values and errors --------------------------------------------------------------------
def test_value_comes_back_to_generator_and_async_tasks(sched) -> None:
    record = []

    def gen():
        record.append((yield run_in_thread(divmod, 17, 5)))

    async def coro():
        ident = await run_in_thread(threading.get_ident)
        record.append(ident != threading.get_ident())
        record.append(await run_in_thread(int, "ff", base=16))

    run_watched(sched, gen(), coro())
    assert sorted(map(str, record)) == ["(3, 2)", "255", "True"]


def test_fns_exception_is_raised_in_the_task_as_itself(sched) -> None:
    error, caught = KeyError("missing"), []

    def fails():
        raise error

    def task():
        try:
            yield run_in_thread(fails)
        except KeyError as exc:
            caught.append(exc)

    run_watched(sched, task())
    assert caught == [error] and caught[0] is error


def test_other_tasks_run_while_fn_blocks(sched) -> None:
    """fn blocks until another task of the same kernel releases it: the kernel is free."""
    fn, started, release = gate()
    record = []

    def caller():
        record.append((yield run_in_thread(fn, "returned")))

    def other():
        yield from wait_started(started)
        for i in range(3):
            record.append(i)
            yield
        release.set()

    run_watched(sched, caller(), other())
    assert record == [0, 1, 2, "returned"]


# -- Seeing it: ps, deadlocks ---------------------------------------------------------------
def test_ps_says_waiting_for_thread_and_the_trace_names_the_call(sched, caplog) -> None:
    fn, started, release = gate()
    sched.trace = True
    states = []

    def caller():
        yield run_in_thread(functools.partial(fn, "x"))

    def watcher():
        yield from wait_started(started)
        states.extend(info.state for info in (yield pyos.Ps()) if info.name.endswith("caller"))
        release.set()

    with caplog.at_level("INFO", logger="pyos"):
        run_watched(sched, caller(), watcher())
    assert states == ["waiting for thread blocker()"]
    assert "run_in_thread(blocker) -> waiting for thread blocker()" in caplog.text


def test_a_task_waiting_for_a_thread_is_not_deadlocked(sched) -> None:
    """The only task waits for a thread, with no timer or descriptor: the kernel waits too."""
    fn, _started, release = gate()
    threading.Timer(0.05, release.set).start()
    sched.new(_call(fn))
    sched.mainloop()                 # would raise Deadlock if the wait were not external
    assert fn.done == ["value"]


def _call(fn, *args, **kwargs):
    return (yield run_in_thread(fn, *args, **kwargs))


# -- Cancellation --------------------------------------------------------------------------
def test_cancel_waits_for_fn_to_return_then_raises_and_drops_the_value(sched) -> None:
    fn, started, release = gate()
    record = []

    def caller():
        try:
            record.append((yield run_in_thread(fn)))
        except pyos.Cancelled:
            record.append(("cancelled", list(fn.done)))

    def canceller(tid):
        yield from wait_started(started)
        yield CancelTask(tid)
        for _ in range(5):
            yield                    # the cancel is pending: the caller stays parked
        record.append([i.state for i in (yield pyos.Ps()) if i.tid == tid])
        release.set()

    tid = sched.new(caller())
    run_watched(sched, canceller(tid))
    assert record == [["waiting for thread blocker()"], ("cancelled", ["value"])]


def test_timeout_waits_for_fn_to_return_then_raises_task_timeout(sched) -> None:
    fn, started, release = gate()
    record = []

    def caller():
        try:
            yield pyos.timeout_after(0.02, run_in_thread(fn))
        except pyos.TaskTimeout:
            record.append(("timed out", list(fn.done)))

    def releaser():
        yield from wait_started(started)
        yield Sleep(0.1)             # well past the deadline: the caller still waits
        record.append("released")
        release.set()

    run_watched(sched, caller(), releaser())
    assert record == ["released", ("timed out", ["value"])]


def test_abandon_on_cancel_raises_at_once_and_fn_finishes_alone() -> None:
    fn, _started, release = gate()
    record = []

    def caller():
        try:
            yield pyos.timeout_after(0.02, run_in_thread(fn, abandon_on_cancel=True))
        except pyos.TaskTimeout:
            record.append(("timed out", list(fn.done)))

    sched = pyos.Scheduler()
    sched.new(caller())
    sched.mainloop()                 # returns while fn still blocks: nobody waits for it
    record.append(("mainloop over", list(fn.done), len(workers())))
    release.set()
    sched.close()                    # joins the worker: fn has returned by now
    assert record == [("timed out", []), ("mainloop over", [], 1)]
    assert fn.done == ["value"] and workers() == []


def test_cancel_before_fn_starts_takes_it_off_the_queue() -> None:
    """One worker, busy: a queued call that is cancelled raises at once and never runs."""
    fn, started, release = gate()
    ran, record = [], []

    def second():
        try:
            yield run_in_thread(ran.append, "ran")
        except pyos.Cancelled:
            record.append("second cancelled")

    def main():
        first = yield NewTask(_call(fn))
        yield from wait_started(started)
        tid = yield NewTask(second())
        yield                        # second is now parked, its call queued
        yield CancelTask(tid)
        yield WaitTask(tid)
        record.append(("first still running", fn.done == []))
        release.set()
        record.append((yield WaitTask(first)))

    pyos.run(main(), max_threads=1)
    assert record == ["second cancelled", ("first still running", True), "value"]
    assert ran == []


def test_a_cancel_pending_before_the_call_means_fn_never_runs(sched) -> None:
    ran, record = [], []

    def victim():
        try:
            yield run_in_thread(ran.append, "ran")
        except pyos.Cancelled:
            record.append("cancelled")

    def main():
        tid = yield NewTask(victim())
        yield CancelTask(tid)        # before victim has run at all: pending
        yield WaitTask(tid)

    run_watched(sched, main())
    assert record == ["cancelled"] and ran == []


def test_kill_unwinds_at_once_and_fn_finishes_alone(sched) -> None:
    fn, started, release = gate()
    record = []

    def victim():
        try:
            yield run_in_thread(fn)
        finally:
            record.append(("unwound", list(fn.done)))

    def killer(tid):
        yield from wait_started(started)
        yield KillTask(tid)
        try:
            yield WaitTask(tid)
        except pyos.TaskKilled:
            record.append("killed")
        release.set()

    tid = sched.new(victim())
    run_watched(sched, killer(tid))
    assert record == [("unwound", []), "killed"]


# -- The pool ---------------------------------------------------------------------------------
def test_max_threads_bounds_the_pool_and_workers_run_at_once() -> None:
    """Pairs meet at a two-party barrier: they must run together, on two workers only."""
    barrier, names = threading.Barrier(2), set()

    def meet():
        names.add(threading.current_thread().name)
        return barrier.wait(LIMIT) >= 0

    def main():
        tids, results = [], []
        for _ in range(6):
            tids.append((yield NewTask(_call(meet))))
        for tid in tids:
            results.append((yield WaitTask(tid)))
        return results

    assert pyos.run(main(), max_threads=2) == [True] * 6
    assert len(names) == 2


def test_threads_are_joined_and_no_descriptor_leaks_at_close() -> None:
    fds = len(os.listdir("/proc/self/fd"))
    before = set(threading.enumerate())

    def main():
        total = 0
        for n in range(20):
            total += yield run_in_thread(abs, -n)
        return total

    assert pyos.run(main()) == 190
    assert set(threading.enumerate()) == before
    assert len(os.listdir("/proc/self/fd")) == fds


def test_calls_are_checked_where_they_are_made() -> None:
    async def coroutine_function():
        pass

    with pytest.raises(TypeError, match="blocking functions"):
        run_in_thread(coroutine_function)
    with pytest.raises(TypeError, match="function to call"):
        run_in_thread(42)
    assert repr(run_in_thread(len, "abc")) == "run_in_thread(len)"


# -- The scheduler's part -----------------------------------------------------------------
def test_at_close_calls_run_latest_first_and_a_failing_one_stops_none(caplog) -> None:
    sched, calls = pyos.Scheduler(), []
    sched.at_close(lambda: calls.append("first"))
    sched.at_close(lambda: 1 / 0)
    sched.at_close(lambda: calls.append("last"))
    sched.close()
    sched.close()                      # a second close calls nothing again
    assert calls == ["last", "first"]
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("bad", [0, -3])
def test_max_threads_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_threads"):
        pyos.Scheduler(max_threads=bad)
    sched = pyos.Scheduler(max_threads=2)
    sched.close()
    assert sched.max_threads == 2
