"""Unwinding a killed task (the unwinding half of spec item 4): every frame's finally runs,
innermost first, and a victim that fights back cannot crash the kernel.

Interleavings are checked with ordered ``record`` lists; nothing sleeps for real.
"""

from __future__ import annotations

import logging

import pytest
from helpers import run

import pyos
from pyos import KillTask, Sleep, WaitTask


# -- 4. Unwinding a killed task -----------------------------------------------------------
def _kill_later(record: list[object], victim: int, times: int = 1):
    yield  # let the victim block first
    for _ in range(times):
        record.append(("kill", (yield KillTask(victim))))


def _bystander(record: list[object]):
    for i in range(3):
        record.append(("bystander", i))
        yield


def test_kill_unwinds_every_frame_innermost_first(sched: pyos.Scheduler) -> None:
    """KillTask closes trampolined, yield-from and await frames alike, innermost first."""
    record: list[object] = []

    async def deepest():
        try:
            await Sleep(3600)
            record.append("deepest resumed")
        finally:
            record.append("deepest")

    async def leaf():
        try:
            await deepest()
        finally:
            record.append("leaf")

    def inner():
        try:
            yield leaf()
        finally:
            record.append("inner")

    def middle():
        try:
            yield from inner()
        finally:
            record.append("middle")

    def outer():
        try:
            yield middle()
        finally:
            record.append("outer")

    run(sched, _kill_later(record, sched.new(outer())))
    assert record == ["deepest", "leaf", "inner", "middle", "outer", ("kill", True)]


def test_victim_whose_finally_yields_cannot_crash_the_kernel(sched: pyos.Scheduler) -> None:
    """A victim yielding in its finally is still ended; killer, waiter, bystander carry on."""
    record: list[object] = []

    def victim():
        try:
            yield Sleep(3600)
        finally:
            record.append("finally")
            yield Sleep(0)
            record.append("finally went on")

    def waiter(tid):
        try:
            yield WaitTask(tid)
        except pyos.TaskKilled:
            record.append("waiter saw kill")

    tid = sched.new(victim())
    run(sched, waiter(tid), _kill_later(record, tid), _bystander(record))
    assert "finally went on" not in record
    for event in ["finally", ("kill", True), "waiter saw kill", ("bystander", 2)]:
        assert event in record


def test_victim_that_swallows_generator_exit_cannot_crash_the_kernel(
    sched: pyos.Scheduler,
) -> None:
    """A victim that keeps catching GeneratorExit is abandoned; everyone else finishes."""
    record: list[object] = []

    def stubborn():
        while True:
            try:
                yield
            except GeneratorExit:
                record.append("swallowed")

    gen = stubborn()
    run(sched, _kill_later(record, sched.new(gen), times=2), _bystander(record))
    assert "swallowed" in record and ("bystander", 2) in record
    assert [event for event in record if event[0] == "kill"] == [("kill", True), ("kill", False)]
    for _ in range(100):  # end it ourselves, so the garbage collector has nothing to report
        try:
            gen.throw(StopIteration)
        except (StopIteration, RuntimeError):
            break


def _nested_victim(record: list[object], error: BaseException):
    """An outer frame calling an inner one whose finally raises error when killed."""
    def inner():
        try:
            yield Sleep(3600)
        finally:
            record.append("inner finally")
            raise error

    def outer():
        try:
            yield inner()
        finally:
            record.append("outer finally")

    return outer()


def test_runtime_error_raised_in_a_finally_while_killed_is_logged(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture,
) -> None:
    """A finally block's own RuntimeError is not mistaken for a frame that ignored
    GeneratorExit: it is logged like any error raised while unwinding, and the finally
    block runs once; the outer frame is unwound too."""
    record: list[object] = []
    victim = sched.new(_nested_victim(record, RuntimeError("disk on fire")))
    with caplog.at_level(logging.ERROR, logger="pyos"):
        run(sched, _kill_later(record, victim))
    assert record == ["inner finally", "outer finally", ("kill", True)]
    [logged] = [r for r in caplog.records if "while being unwound" in r.getMessage()]
    assert logged.exc_info is not None
    assert repr(logged.exc_info[1]) == "RuntimeError('disk on fire')"


def test_interrupt_in_an_inner_finally_unwinds_every_frame_before_it_propagates(
    sched: pyos.Scheduler,
) -> None:
    """Ctrl-C raised by an inner finally block while its task is killed still leaves
    mainloop(), but only after the outer frames' finally blocks have run (not at garbage
    collection); every other task is unwound as for any Ctrl-C."""
    record: list[object] = []
    victim = sched.new(_nested_victim(record, KeyboardInterrupt()))

    def sleeper():
        try:
            yield Sleep(3600)
        finally:
            record.append("sleeper finally")

    sched.new(sleeper())
    sched.new(_kill_later(record, victim))
    seen: list[object] = []
    try:
        sched.mainloop()
    except KeyboardInterrupt:
        seen = list(record)   # while the interrupt (and its traceback) is still alive
    assert seen[:2] == ["inner finally", "outer finally"]
    assert "sleeper finally" in seen and sched.tasks() == []
