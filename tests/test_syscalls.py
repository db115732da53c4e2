"""System calls: the SystemCall protocol, GetTid, NewTask, WaitTask and Sleep.

Covers spec items 2 (mixing generator and async tasks), 3 (WaitTask), 6 (bad arguments
fail where they were made) and 7 (Sleep); KillTask (item 4) is in test_killtask.py.
Interleavings are checked with ordered ``record`` lists; only the Sleep tests sleep,
and briefly.
"""

from __future__ import annotations

import math
import time

import pytest
from helpers import catch, record_steps, run, value_after

import pyos
from pyos import GetTid, KillTask, NewTask, ReadWait, Sleep, SystemCall, TaskError, WaitTask

NoSuchTask = pyos.NoSuchTask


# -- SystemCall and user-defined calls ----------------------------------------------------
class GetTidTwice(SystemCall):
    """Beazley's form: handle() uses self.task and self.sched."""

    def handle(self) -> None:
        self.task.sendval = 2 * self.task.tid
        self.sched.schedule(self.task)


class Boom(SystemCall):
    """Raises in handle(), after scheduling the caller (and spawning a task) if asked to."""

    def __init__(self, schedule_first: bool = False, spawn: bool = False) -> None:
        self.schedule_first, self.spawn = schedule_first, spawn

    def handle(self) -> None:
        if self.schedule_first:
            self.sched.schedule(self.task)
        if self.spawn:
            self.sched.new(value_after(None, 0))
        raise KeyError("boom")


def test_user_defined_call_in_beazley_form() -> None:
    """A subclass setting task.sendval and calling sched.schedule works, yielded or awaited."""
    async def child():
        return await GetTidTwice()

    def main():
        mine = yield GetTidTwice()
        theirs = yield WaitTask((yield NewTask(child())))
        return mine, theirs

    assert pyos.run(main()) == (2, 4)


@pytest.mark.parametrize(("call", "error"), [(Boom(), KeyError),
                                             (SystemCall(), NotImplementedError)])
def test_handle_exception_is_thrown_into_the_calling_task(call: SystemCall, error: type) -> None:
    """An exception from handle() is raised at the task's yield; the task goes on."""
    record: list[object] = []

    def main():
        yield from catch(record, call, error)
        return (yield GetTid())

    assert pyos.run(main()) == 1 and record == [("caught", error.__name__)]


@pytest.mark.parametrize("spawn", [False, True])
def test_handle_that_schedules_then_raises_resumes_the_task_once(
    sched: pyos.Scheduler, spawn: bool
) -> None:
    """A handler that schedules the task (then maybe starts another) and fails must not
    make the task run twice."""
    record: list[object] = []

    def caller():
        yield from catch(record, Boom(schedule_first=True, spawn=spawn), KeyError)
        yield from record_steps(record, "a", 3)

    run(sched, caller(), record_steps(record, "b", 3))
    assert record == [("caught", "KeyError"), ("a", 0), ("b", 0), ("a", 1), ("b", 1),
                      ("a", 2), ("b", 2)]


# -- NewTask ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [record_steps, 42])
def test_new_task_rejects_non_coroutines_at_construction(bad: object) -> None:
    """NewTask(f) without calling f (or an int) raises TypeError in the caller at once."""
    def main():
        yield
        try:
            NewTask(bad)
        except TypeError as exc:
            return str(exc)
        return None

    assert (getattr(bad, "__name__", None) or repr(bad)) in pyos.run(main())


def test_generator_and_async_tasks_create_and_wait_for_each_other() -> None:
    """Generator tasks spawn and wait for async tasks and vice versa."""
    async def async_child(x):
        await GetTid()
        return ("async", x)

    async def async_parent():
        return await WaitTask(await NewTask(value_after(("gen", 1))))

    def gen_parent():
        first = yield WaitTask((yield NewTask(async_child(2))))
        second = yield WaitTask((yield NewTask(async_parent())))
        return first, second

    assert pyos.run(gen_parent()) == (("async", 2), ("gen", 1))


# -- WaitTask -----------------------------------------------------------------------------
def test_wait_task_returns_value_also_after_child_finished(sched: pyos.Scheduler) -> None:
    """WaitTask gives the child's return value, whether it is still running or already done."""
    record: list[object] = []

    def parent():
        early = yield NewTask(value_after("early", 1))
        late = yield NewTask(value_after("late", 5))
        for _ in range(3):
            yield  # "early" finishes meanwhile
        record.append((yield WaitTask(early)))
        record.append((yield WaitTask(late)))

    run(sched, parent())
    assert record == ["early", "late"]


def test_wait_task_raises_task_error_caused_by_the_childs_exception(sched: pyos.Scheduler) -> None:
    """A failed child makes WaitTask raise TaskError with __cause__, .tid and .name (given to
    NewTask), whether it failed before the wait or during it."""
    raised: dict[int, BaseException] = {}
    caught: list[tuple[int, int, str, BaseException | None, bool]] = []

    def child(steps):
        tid = yield GetTid()
        for _ in range(steps):
            yield
        raised[tid] = ValueError(f"child {tid}")
        raise raised[tid]

    def parent():
        running = yield NewTask(child(5), name="slow")
        finished = yield NewTask(child(0), name="fast")
        yield
        yield
        for tid in (running, finished):
            already_done = tid in raised
            try:
                yield WaitTask(tid)
            except TaskError as exc:
                caught.append((tid, exc.tid, exc.name, exc.__cause__, already_done))

    run(sched, parent())
    assert caught == [(2, 2, "slow", raised[2], False), (3, 3, "fast", raised[3], True)]


@pytest.mark.parametrize(("tid", "error"), [(99, NoSuchTask), (0, NoSuchTask), (-1, NoSuchTask),
                                            ("1", NoSuchTask), ("self", RuntimeError)])
def test_wait_task_for_unknown_id_or_oneself_fails_at_once(
    sched: pyos.Scheduler, tid: object, error: type
) -> None:
    """WaitTask on an id never issued (NoSuchTask, a LookupError) or one's own id
    (RuntimeError) raises in the waiter in the same turn."""
    assert issubclass(NoSuchTask, LookupError)
    record: list[object] = []

    def waiter():
        yield from catch(record, WaitTask((yield GetTid()) if tid == "self" else tid), error)

    run(sched, waiter(), record_steps(record, "other", 1))
    assert record == [("caught", error.__name__), ("other", 0)]


# -- Sleep --------------------------------------------------------------------------------
def test_sleep_resumes_after_at_least_that_long_while_others_run(sched: pyos.Scheduler) -> None:
    """Sleep(0.05) returns after >= 0.05 s, and the other task keeps running meanwhile."""
    woke: list[float] = []
    steps = [0]

    def sleeper():
        start = time.perf_counter()
        yield Sleep(0.05)
        woke.append(time.perf_counter() - start)

    def busy():
        for _ in range(10_000_000):
            if woke:
                break
            steps[0] += 1
            yield

    run(sched, sleeper(), busy())
    assert woke[0] >= 0.05 and steps[0] > 0


@pytest.mark.timeout(10)
@pytest.mark.parametrize("seconds", [1e7, math.inf])
def test_very_long_sleep_leaves_the_kernel_working(
    sched: pyos.Scheduler, socketpair, seconds: float
) -> None:
    """A sleeper of 116 days (or forever) as the nearest timer must not overflow the poll:
    the kernel blocks and still serves I/O, here a socket that is already readable."""
    a, b = socketpair
    b.send(b"ready")
    record: list[object] = []

    def sleeper():
        yield Sleep(seconds)

    def reader(tid):
        yield ReadWait(a)
        record.append(a.recv(10))
        record.append((yield KillTask(tid)))

    run(sched, reader(sched.new(sleeper())))
    assert record == [b"ready", True]


@pytest.mark.parametrize(("arg", "error"), [(-1, ValueError), (-0.001, ValueError),
                                            ("x", TypeError), (None, TypeError),
                                            (True, TypeError), (False, TypeError),
                                            (float("nan"), ValueError)])
def test_sleep_rejects_bad_durations_at_construction(arg: object, error: type) -> None:
    """Sleep(-1) and Sleep(nan) are ValueErrors; Sleep("x") and Sleep(True) (a bool is not
    a number of seconds) TypeErrors, raised in the calling task."""
    def main():
        try:
            yield Sleep(arg)
        except error:
            return "caught"
        return None

    assert pyos.run(main()) == "caught"


class WakeLater(SystemCall):
    """A user-defined call that schedules another task, whatever it is doing."""

    def __init__(self, tid: int) -> None:
        self.tid = tid

    def handle(self) -> None:
        target = self.sched._tasks[self.tid]
        target.sendval = "woken by a user call"
        self.sched.schedule(target)
        self.sched.schedule(target)      # twice: still queued once
        self.sched.schedule(self.task)


def test_schedule_from_a_user_call_ends_the_old_wait(sched, socketpair) -> None:
    """Issue 9, fault 3: a task scheduled while it sleeps or waits on a descriptor is not
    resumed a second time by the stale timer or event, nor run twice when scheduled twice."""
    a, b = socketpair
    record: list[object] = []

    def sleeper():
        record.append(("sleeper", (yield Sleep(0.05))))
        yield Sleep(0.1)                 # the stale timer must not cut this one short
        record.append("sleeper slept")

    def reader():
        record.append(("reader", (yield ReadWait(a))))
        record.append("reader done")

    def main():
        s = yield pyos.NewTask(sleeper())
        r = yield pyos.NewTask(reader())
        yield
        yield WakeLater(s)
        yield WakeLater(r)
        b.send(b"x")                     # the stale read wait must not wake the reader again
        yield Sleep(0.2)

    run(sched, main())
    assert record == [("sleeper", "woken by a user call"), ("reader", "woken by a user call"),
                      "reader done", "sleeper slept"]
    assert not sched._poller.readers and len(sched._timers) == 0
