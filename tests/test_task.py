"""Tasks and their trampoline stacks: sub-calls, return values, exceptions, bad yields.

Covers spec items 1 (trampolining), 2 (``yield from`` and ``async def``) and 6 (bad
yields); unwinding a killed task (item 4) is in test_unwinding.py.  Interleavings are
checked with ordered ``record`` lists; nothing sleeps for real.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from helpers import record_steps, run

import pyos
from pyos import GetTid, KillTask, Sleep
from pyos.task import Task

DEPTH = 20_000


def _names(exc: BaseException) -> list[str]:
    """Function names of every frame in exc's traceback, outermost first."""
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


# -- 1. Trampolining --------------------------------------------------------------------
def test_sub_call_returns_its_value_or_raises_at_the_callers_yield() -> None:
    """``value = yield sub()`` is sub's return value; sub's exception is raised there."""
    def add(a, b):
        yield
        if b is None:
            raise KeyError("inner")
        return a + b

    def main():
        first = yield add(1, 2)
        second = yield add(first, 10)
        try:
            yield add(0, None)
        except KeyError as exc:
            return first, second, exc.args[0]
        return None

    assert pyos.run(main()) == (3, 13, "inner")


def _level3():
    yield
    raise ValueError("deep down")


def _level2():
    yield _level3()


def _level1():
    yield _level2()


def _top():
    yield _level1()


LEVELS = ("_top", "_level1", "_level2", "_level3")


def test_uncaught_traceback_from_run_shows_every_trampolined_frame() -> None:
    """pyos.run raises the original error; its traceback lists every level, outermost first."""
    with pytest.raises(ValueError, match="deep down") as info:
        pyos.run(_top())
    text = "".join(traceback.format_exception(info.value))
    positions = [text.index(f"in {name}\n") for name in LEVELS]
    assert positions == sorted(positions)


def test_uncaught_traceback_as_logged_shows_every_trampolined_frame(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed task is logged at ERROR on "pyos" with a traceback through every level."""
    sched.new(_top())
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    [record] = [r for r in caplog.records if r.name == "pyos" and r.levelno == logging.ERROR]
    assert record.exc_info is not None and set(LEVELS) <= set(_names(record.exc_info[1]))


def _failure_of(target) -> BaseException:
    """Run target as a task next to a waiter; return the exception target failed with."""
    sched, seen = pyos.Scheduler(), []

    def waiter(tid):
        try:
            yield pyos.WaitTask(tid)
        except pyos.TaskError as exc:
            seen.append(exc.__cause__)

    logging.getLogger("pyos").disabled = True   # the failure is logged too: not the point
    try:
        run(sched, waiter(sched.new(target)))
    finally:
        logging.getLogger("pyos").disabled = False
        sched.close()
    [exc] = seen
    return exc


def test_failure_has_no_kernel_stop_iteration_as_context() -> None:
    """A sub-call's return value never leaks into a later failure as its __context__, nor
    does an exception the task already handled."""
    def secret():
        yield
        return b"password"

    def after_return():
        assert (yield secret()) == b"password"
        raise KeyError("after a return")

    def after_handled():
        try:
            yield _level3()
        except ValueError:
            pass
        raise KeyError("after a handled error")

    for target in (after_return(), after_handled()):
        exc = _failure_of(target)
        assert isinstance(exc, KeyError)
        assert exc.__context__ is None, repr(exc.__context__)


def test_failure_context_inside_an_except_block_is_kept() -> None:
    """Only the kernel's context goes: an error raised while handling another keeps it."""
    def main():
        try:
            yield _level3()
        except ValueError:
            raise KeyError("while handling")  # noqa: B904 (the implicit context is the point)

    exc = _failure_of(main())
    assert isinstance(exc.__context__, ValueError)


def test_failure_traceback_holds_only_the_users_frames(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """Logged or delivered, a failure's traceback is the task's frames, outermost first,
    with no kernel frame (_run_ready, _trap, advance) before or between them."""
    assert _names(_failure_of(_top())) == list(LEVELS)
    sched.new(_top())
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    [record] = [r for r in caplog.records if r.name == "pyos" and r.levelno == logging.ERROR]
    assert _names(record.exc_info[1]) == list(LEVELS)


def test_system_calls_and_bare_yields_work_at_any_depth(sched: pyos.Scheduler) -> None:
    """Deep in sub-calls and ``yield from``, GetTid answers and a bare yield lets others run."""
    record: list[object] = []

    def leaf():
        tid = yield GetTid()
        record.append(("leaf", tid))
        yield
        record.append("leaf resumed")
        return tid * 10

    def mid():
        return (yield from leaf()) + 1

    def deep():
        record.append(("deep got", (yield mid())))

    def other():
        record.append("other")
        yield

    tid = sched.new(deep())
    run(sched, other())
    assert record == [("leaf", tid), "other", "leaf resumed", ("deep got", tid * 10 + 1)]


def _nest(n):
    if n == 0:
        tid = yield GetTid()
        yield
        return tid
    return (yield _nest(n - 1)) + 1


def _nest_fail(n):
    if n == 0:
        yield
        raise ValueError("bottom")
    yield _nest_fail(n - 1)


def test_twenty_thousand_nested_calls_return_without_recursion_error() -> None:
    """20,000 nested sub-calls (system call and bare yield at the bottom) return a value."""
    assert pyos.run(_nest(DEPTH)) == DEPTH + 1  # the tid of the only task is 1


def test_exception_propagates_through_twenty_thousand_levels() -> None:
    """An error at depth 20,000 reaches the top, passing through every level's frame."""
    def main():
        try:
            yield _nest_fail(DEPTH)
        except ValueError as exc:
            return _names(exc).count("_nest_fail")
        return 0

    assert pyos.run(main()) == DEPTH + 1


def test_kill_unwinds_twenty_thousand_nested_calls() -> None:
    """Killing a task 20,000 calls deep runs every level's finally, innermost first."""
    unwound: list[int] = []

    def nest(n):
        try:
            yield Sleep(3600) if n == 0 else nest(n - 1)
        finally:
            unwound.append(n)

    def main():
        tid = yield pyos.NewTask(nest(DEPTH))
        yield Sleep(1)   # (virtual time) calls take turns: it reaches the bottom meanwhile
        return (yield KillTask(tid))

    assert pyos.run(main(), clock=pyos.VirtualClock()) is True
    assert unwound == list(range(DEPTH + 1))


def test_runaway_recursion_raises_recursion_error_in_that_task_only(
    sched: pyos.Scheduler,
) -> None:
    """Endless ``yield f()`` recursion stops at Task.max_depth with a RecursionError at the
    deepest yield; the task may catch it, and every other task runs on unharmed."""
    record: list[object] = []
    deepest = [0]

    def down(n):
        deepest[0] = n
        yield down(n + 1)

    def runaway():
        try:
            yield down(1)
        except RecursionError as exc:
            record.append(("caught", "max_depth" in str(exc)))
        yield from record_steps(record, "runaway after", 1)

    def nested_deep():
        record.append(("deep", (yield _nest(DEPTH))))

    run(sched, runaway(), record_steps(record, "bystander", 3), nested_deep())
    assert Task.max_depth >= 5 * DEPTH
    assert deepest[0] == Task.max_depth   # the call that went too deep never started
    assert ("caught", True) in record and ("runaway after", 0) in record
    assert ("bystander", 2) in record and ("deep", DEPTH + 3) in record


def test_uncaught_recursion_error_ends_only_its_task(sched: pyos.Scheduler) -> None:
    """Not caught, the RecursionError ends the runaway task like any failure: its waiter
    gets a TaskError; nothing else is touched, and the limit is per task."""
    record: list[object] = []

    def down():
        yield down()

    def waiter(tid):
        try:
            yield pyos.WaitTask(tid)
        except pyos.TaskError as exc:
            record.append(type(exc.__cause__).__name__)
        record.append(("still deep enough", (yield _nest(DEPTH))))

    logging.getLogger("pyos").disabled = True   # the failure is logged: not the point
    try:
        run(sched, waiter(sched.new(down())), record_steps(record, "bystander", 2))
    finally:
        logging.getLogger("pyos").disabled = False
    assert "RecursionError" in record and ("bystander", 1) in record
    assert ("still deep enough", DEPTH + 2) in record


# -- 2. async def ------------------------------------------------------------------------
async def _double(x):
    await GetTid()
    if x is None:
        raise KeyError("async")
    return 2 * x


def test_async_task_awaits_system_calls_and_coroutines() -> None:
    """In an async task ``await GetTid()`` works, also inside an awaited coroutine."""
    async def main():
        return await GetTid(), await _double(21)

    assert pyos.run(main()) == (1, 42)


def test_generator_task_yields_async_coroutine_as_sub_call() -> None:
    """A generator task may ``yield coro()``: it runs as a sub-call, value and error both."""
    def main():
        value = yield _double(21)
        try:
            yield _double(None)
        except KeyError:
            return value
        return None

    assert pyos.run(main()) == 42


# -- 6. Bad yields ------------------------------------------------------------------------
def _not_called():
    yield


@pytest.mark.parametrize(
    ("bad", "named"),
    [(42, "42"), ("text", "'text'"), ([1, 2], "[1, 2]"), (GetTid, "GetTid"),
     (_not_called, "_not_called")],
)
def test_bad_yield_throws_type_error_into_the_task(bad: object, named: str) -> None:
    """Yielding a non-call raises TypeError naming it at that yield; the task goes on."""
    def main():
        try:
            yield bad
        except TypeError as exc:
            return str(exc), (yield GetTid())
        return None

    message, tid = pyos.run(main())
    assert named in message and tid == 1


def test_bad_yield_in_sub_call_is_raised_in_that_frame() -> None:
    """A bad yield deep in a sub-call raises there; uncaught, it reaches the caller."""
    def sub(catch):
        try:
            yield 42
        except TypeError:
            if not catch:
                raise
            return "sub caught"
        return "no error"

    def main():
        first = yield sub(True)
        try:
            yield sub(False)
        except TypeError:
            return first, "caller caught"
        return first, "no error"

    assert pyos.run(main()) == ("sub caught", "caller caught")
