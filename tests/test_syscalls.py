"""System calls: the SystemCall protocol, GetTid, NewTask, KillTask, WaitTask and Sleep.

Covers spec items 2 (mixing generator and async tasks), 3 (WaitTask), 4 (KillTask),
6 (bad arguments fail where they were made) and 7 (Sleep).  Interleavings are checked
with ordered ``record`` lists; only the Sleep tests sleep, and briefly.
"""

from __future__ import annotations

import logging
import math
import time

import pytest

import pyos
from pyos import GetTid, KillTask, NewTask, ReadWait, Sleep, SystemCall, TaskError, WaitTask

NoSuchTask, TaskKilled = pyos.NoSuchTask, pyos.TaskKilled


def _steps(record: list[object], label: str, n: int):
    for i in range(n):
        record.append((label, i))
        yield


def _value_after(value: object, steps: int = 1):
    for _ in range(steps):
        yield
    return value


def _catch(record: list[object], call: SystemCall, *errors: type[BaseException]):
    """Make call and record ("caught", type name) if it raises one of errors."""
    try:
        return (yield call)
    except errors as exc:
        record.append(("caught", type(exc).__name__))
    return None


def _run(sched: pyos.Scheduler, *targets: object) -> None:
    """Start targets as tasks, in order, and run them all to completion."""
    for target in targets:
        sched.new(target)
    sched.mainloop()


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
            self.sched.new(_value_after(None, 0))
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
        yield from _catch(record, call, error)
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
        yield from _catch(record, Boom(schedule_first=True, spawn=spawn), KeyError)
        yield from _steps(record, "a", 3)

    _run(sched, caller(), _steps(record, "b", 3))
    assert record == [("caught", "KeyError"), ("a", 0), ("b", 0), ("a", 1), ("b", 1),
                      ("a", 2), ("b", 2)]


# -- NewTask ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [_steps, 42])
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
        return await WaitTask(await NewTask(_value_after(("gen", 1))))

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
        early = yield NewTask(_value_after("early", 1))
        late = yield NewTask(_value_after("late", 5))
        for _ in range(3):
            yield  # "early" finishes meanwhile
        record.append((yield WaitTask(early)))
        record.append((yield WaitTask(late)))

    _run(sched, parent())
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

    _run(sched, parent())
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
        yield from _catch(record, WaitTask((yield GetTid()) if tid == "self" else tid), error)

    _run(sched, waiter(), _steps(record, "other", 1))
    assert record == [("caught", error.__name__), ("other", 0)]


# -- KillTask -----------------------------------------------------------------------------
@pytest.mark.timeout(10)
def test_kill_task_returns_false_for_unknown_or_finished_tasks() -> None:
    """KillTask is True for a live task (an hour-long sleeper, whose timer must not keep
    mainloop running), False for an unknown id or a finished task."""
    def sleeper():
        yield Sleep(3600)

    def main():
        done = yield NewTask(_value_after(None, 0))
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

    _run(sched, main())
    assert record == ["victim unwound", True, b"ping"]


def test_kill_removes_a_task_wait_and_wakes_its_waiters(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """A victim in WaitTask leaves that wait; its waiters, before and after the kill, get
    TaskKilled (a TaskError); the child it waited for is unharmed."""
    assert issubclass(TaskKilled, TaskError)
    record: list[object] = []

    def middle(child):
        try:
            yield WaitTask(child)
        finally:
            record.append("middle unwound")

    def main():
        child = yield NewTask(_value_after("child value", 5))
        victim = yield NewTask(middle(child))
        yield NewTask(_catch(record, WaitTask(victim), TaskKilled))
        yield
        record.append((yield KillTask(victim)))
        yield from _catch(record, WaitTask(victim), TaskKilled)
        record.append((yield WaitTask(child)))

    sched.new(main())
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    assert record == ["middle unwound", True, *[("caught", "TaskKilled")] * 2, "child value"]
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
        victim_tid = sched.new(_steps(record, "victim", 5))
        sched.new(killer())
    else:
        sched.new(killer())
        victim_tid = sched.new(_steps(record, "victim", 5))
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

    _run(sched, _catch(record, WaitTask(sched.new(suicidal())), TaskKilled))
    assert record == ["unwound", ("caught", "TaskKilled")]


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

    _run(sched, sleeper(), busy())
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

    _run(sched, reader(sched.new(sleeper())))
    assert record == [b"ready", True]


@pytest.mark.parametrize(("arg", "error"), [(-1, ValueError), (-0.001, ValueError),
                                            ("x", TypeError), (None, TypeError),
                                            (float("nan"), TypeError)])
def test_sleep_rejects_bad_durations_at_construction(arg: object, error: type) -> None:
    """Sleep(-1) is a ValueError and Sleep("x") a TypeError, raised in the calling task."""
    def main():
        try:
            yield Sleep(arg)
        except error:
            return "caught"
        return None

    assert pyos.run(main()) == "caught"
