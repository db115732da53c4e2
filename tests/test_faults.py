"""Faults and the end of mainloop: a failing task, a BaseException that stops the program,
deadlock, re-entry (spec items 5, 8).

Orderings are checked exactly with ``record`` lists.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from helpers import noop, record_steps, run

import pyos
from pyos import KillTask, Sleep, TaskKilled, WaitTask


# -- 5. Fault isolation -------------------------------------------------------------------
def test_uncaught_exception_is_logged_and_others_keep_running(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing task ends alone: logged on "pyos" at ERROR with exc_info; others finish."""
    record: list[object] = []

    def bad():
        yield
        raise ZeroDivisionError("task bug")

    sched.new(bad())
    sched.new(record_steps(record, "good", 5))
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    assert record == [("good", i) for i in range(5)]
    errors = [r for r in caplog.records if r.name == "pyos" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ZeroDivisionError)
    assert "in bad\n" in "".join(traceback.format_exception(errors[0].exc_info[1]))


# -- 8. The end of mainloop: deadlock and re-entry ----------------------------------------
@pytest.mark.timeout(10)
def test_deadlock_after_a_killed_sleeper_is_detected(sched: pyos.Scheduler) -> None:
    """A waits for B, B for a sleeper that is killed, then for A: Deadlock (a RuntimeError)
    at once, naming each blocked task and what it waits for."""
    def alpha():
        yield WaitTask(2)

    def beta():
        try:
            yield WaitTask(3)
        except TaskKilled:
            yield WaitTask(1)

    def killer():
        yield
        killed.append((yield KillTask(3)))

    killed: list[bool] = []

    sched.new(alpha(), name="alpha")
    sched.new(beta(), name="beta")
    sched.new(_sleeper(3600), name="sleeper")
    sched.new(killer())
    with pytest.raises(pyos.Deadlock) as info:
        sched.mainloop()
    message = str(info.value)
    assert killed == [True] and isinstance(info.value, RuntimeError)
    for text in ("alpha", "beta", "waiting for task 2", "waiting for task 1"):
        assert text in message
    assert "sleeper" not in message


def _sleeper(seconds: float):
    yield Sleep(seconds)


def test_mainloop_inside_a_task_raises_runtime_error_there(sched: pyos.Scheduler) -> None:
    """Calling mainloop (or pyos.run) from a running task raises RuntimeError in it."""
    caught: list[str] = []

    def nested():
        for attempt in (sched.mainloop, lambda: pyos.run(noop())):
            try:
                attempt()
            except RuntimeError:
                caught.append("caught")
            yield

    run(sched, nested(), noop())
    assert caught == ["caught", "caught"]


# -- A BaseException that is not an Exception: the program's, not the task's ------------
class Stop(BaseException):
    """Not an Exception: stands for a test runner's stop, or any program-level exit."""


@pytest.mark.timeout(10)
@pytest.mark.parametrize("where", ["task", "sub-call"])
@pytest.mark.parametrize("error", [Stop, KeyboardInterrupt])
def test_base_exception_in_a_task_ends_mainloop_and_unwinds_the_rest(
    sched: pyos.Scheduler, socketpair, caplog: pytest.LogCaptureFixture,
    error: type[BaseException], where: str,
) -> None:
    """A BaseException that is not an Exception, raised in a task (or a sub-call of one),
    leaves mainloop as that very object at once: no other task runs again, every one
    (sleeping, waiting on I/O, waiting for the raiser, ready) is unwound, nothing is logged
    at ERROR, and the scheduler can run new tasks afterwards."""
    a, _ = socketpair
    record: list[object] = []
    raised: list[BaseException] = []
    spins, spins_at_stop = [0], []

    def guarded(label: str, call: object):
        try:
            yield call
            record.append(f"{label} resumed")
        finally:
            record.append(label)

    def spinner():
        try:
            while spins[0] < 1000:
                spins[0] += 1
                yield
        finally:
            record.append("spinner")

    def stop_now():
        yield
        spins_at_stop.append(spins[0])
        raised.append(error("stop"))
        raise raised[0]

    def stopper():
        try:
            yield                            # let every other task block first
            try:
                if where == "sub-call":
                    yield stop_now()
                else:
                    yield from stop_now()
            except Exception:
                record.append("caught as an Exception")
        finally:
            record.append("stopper")

    sched.new(guarded("sleeper", Sleep(3600)))
    sched.new(guarded("reader", pyos.ReadWait(a)))
    stopper_tid = sched.new(stopper())
    sched.new(guarded("joiner", WaitTask(stopper_tid)))
    sched.new(spinner())
    with caplog.at_level(logging.DEBUG, logger="pyos"), pytest.raises(error) as info:
        sched.mainloop()
    assert info.value is raised[0]
    assert spins[0] == spins_at_stop[0] > 0          # the loop did not go on
    assert record[0] == "stopper"
    assert sorted(record) == ["joiner", "reader", "sleeper", "spinner", "stopper"]
    assert sched.ps() == [] and len(sched._poller) == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    run(sched, record_steps(record, "after", 2))
    assert record[-2:] == [("after", 0), ("after", 1)]


def test_a_failure_raised_with_another_live_tasks_exception_leaves_that_task_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 9, fault 1: B fails with an exception object that A raised and caught and is
    still suspended over; cleaning up B's failure must not finalize A's generator."""
    shared: list[BaseException] = []
    record: list[object] = []

    def a():
        try:
            raise ValueError("raised in a")
        except ValueError as exc:
            shared.append(exc)
        yield Sleep(0)          # a is suspended here, its frame in exc's traceback
        record.append("a resumed")
        yield
        record.append("a finished")
        return "a's value"

    def b():
        yield
        raise shared[0]

    def main():
        ta = yield pyos.NewTask(a())
        tb = yield pyos.NewTask(b())
        for _ in range(3):
            yield
        record.append((yield WaitTask(ta)))
        try:
            yield WaitTask(tb)
        except pyos.OutcomeForgotten:   # (its failure was logged, not collected)
            record.append("b's outcome was logged")
        except pyos.TaskError as exc:
            record.append(type(exc.__cause__).__name__)

    with caplog.at_level(logging.ERROR, logger="pyos"):
        pyos.run(main())
    assert record == ["a resumed", "a finished", "a's value", "ValueError"]


def test_a_failure_delivered_to_a_waiter_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A failure delivered to a task already waiting for it is that task's to handle; one
    nobody waits for is logged at once, as before."""
    def bad(label):
        yield
        raise KeyError(label)

    def main():
        waited = yield pyos.NewTask(bad("waited"))
        yield pyos.NewTask(bad("unwaited"))
        try:
            yield WaitTask(waited)
        except pyos.TaskError as exc:
            return repr(exc.__cause__)

    with caplog.at_level(logging.ERROR, logger="pyos"):
        assert pyos.run(main()) == "KeyError('waited')"
    logged = [r.exc_info[1] for r in caplog.records if r.levelno >= logging.ERROR]
    assert [repr(e) for e in logged] == ["KeyError('unwaited')"]

