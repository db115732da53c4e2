"""Trace mode: one INFO line on logger "pyos" per system call, with its outcome.

``Scheduler(trace=True)`` or the environment variable ``PYOS_TRACE=1`` turns it on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

import pyos
from pyos import (
    GetTid,
    KillTask,
    NewTask,
    NoSuchTask,
    ReadWait,
    Sleep,
    SystemCall,
    TaskError,
    WaitTask,
    WriteWait,
)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Every record on logger "pyos" from DEBUG up (the list fills as the test runs)."""
    caplog.set_level(logging.DEBUG, logger="pyos")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logging.getLogger("pyos").addHandler(handler)
    yield records
    logging.getLogger("pyos").removeHandler(handler)


def run(target, poller: str | None = None, **options) -> None:
    sched = pyos.Scheduler(poller=poller, **options)
    try:
        sched.new(target, name="main")
        sched.mainloop()
    finally:
        sched.close()


def messages(records: list[logging.LogRecord]) -> list[str]:
    assert all(r.levelno == logging.INFO for r in records), records
    lines = [r.getMessage() for r in records]
    assert not any("\n" in line for line in lines)
    return lines


def calls(records: list[logging.LogRecord]) -> list[str]:
    """Only the system call lines (the trace also shows wake-ups and exits)."""
    return [line for line in messages(records) if " -> " in line]


def idle():
    yield


def test_trace_logs_each_call_and_its_outcome(poller, socketpair, log):
    """Each call is logged once, in order, with its arguments and what came of it."""
    a, b = socketpair
    fd = a.fileno()

    def main():
        yield GetTid()
        child = yield NewTask(idle(), name="child")
        yield WaitTask(child)
        b.send(b"x")
        yield ReadWait(a)
        yield WriteWait(a)
        yield Sleep(0.01)
        try:
            yield WaitTask(99)
        except NoSuchTask:
            pass

    run(main(), poller, trace=True)
    lines = calls(log)
    assert len(lines) == 7, lines
    assert lines[0] == "<Task 1 'main'> GetTid() -> resumed with 1"
    assert lines[1] == "<Task 1 'main'> NewTask(idle(), 'child') -> resumed with 2"
    assert lines[2:5] == [
        "<Task 1 'main'> WaitTask(2) -> waiting for task 2",
        f"<Task 1 'main'> ReadWait({fd}) -> waiting to read fd {fd}",
        f"<Task 1 'main'> WriteWait({fd}) -> waiting to write fd {fd}",
    ]
    assert re.fullmatch(r"<Task 1 'main'> Sleep\(0\.01\) -> sleeping for 0\.0(09|10)s more",
                        lines[5]), lines[5]
    assert lines[6] == ("<Task 1 'main'> WaitTask(99) -> raised "
                        "NoSuchTask('no task 99: this scheduler never created it')")
    others = [line for line in messages(log) if " -> " not in line]
    assert others == [
        "<Task 2 'child'> exited: returned",
        f"woke <Task 1 'main'> (waiting to read fd {fd})",
        f"woke <Task 1 'main'> (waiting to write fd {fd})",
        "<Task 1 'main'> exited: returned",
    ]


def test_trace_async_and_nested_calls(log):
    """Calls awaited in sub-coroutines are attributed to their task, under its name."""
    async def helper():
        return await GetTid()

    async def main():
        child = await NewTask(idle(), name="victim")
        await helper()
        await KillTask(child)
        try:
            await WaitTask(1)
        except RuntimeError:
            pass

    run(main(), trace=True)
    lines = calls(log)
    assert lines[1:] == [
        "<Task 1 'main'> GetTid() -> resumed with 1",
        "<Task 1 'main'> KillTask(2) -> resumed with True",
        "<Task 1 'main'> WaitTask(1) -> raised "
        "RuntimeError(\"<Task 1 'main'> cannot wait for itself\")",
    ]


def test_trace_user_defined_call(log):
    """A call in Beazley's form is traced by its class name and arguments."""
    class Double(SystemCall):
        def __init__(self, n):
            self.n = n

        def handle(self):
            self.task.sendval = 2 * self.n
            self.sched.schedule(self.task)

    def main():
        assert (yield Double(21)) == 42

    run(main(), trace=True)
    assert calls(log) == ["<Task 1 'main'> Double(21) -> resumed with 42"]


def test_trace_shows_a_failure_delivered_by_waittask(log):
    """WaitTask on a failed task resumes the waiter with TaskError, and the trace says so."""
    def bad():
        raise ValueError("boom")
        yield

    def main():
        child = yield NewTask(bad(), name="bad")
        yield
        try:
            yield WaitTask(child)
        except TaskError:
            pass

    run(main(), trace=True)
    [line] = [r.getMessage() for r in log if "WaitTask" in r.getMessage()]
    assert "resumed with None" not in line, line
    assert "TaskError" in line, line


def test_trace_off_logs_nothing(monkeypatch, socketpair, log):
    """Without trace (and with trace=False despite PYOS_TRACE) nothing is logged."""
    a, b = socketpair

    def main():
        yield GetTid()
        b.send(b"x")
        yield ReadWait(a)
        yield Sleep(0)

    monkeypatch.delenv("PYOS_TRACE", raising=False)
    run(main())
    monkeypatch.setenv("PYOS_TRACE", "1")
    run(main(), trace=False)
    assert log == []


def test_trace_env_var_turns_it_on(monkeypatch, log):
    """PYOS_TRACE=1 turns tracing on for schedulers that don't say otherwise."""
    def main():
        yield GetTid()

    monkeypatch.setenv("PYOS_TRACE", "1")
    run(main())
    assert messages(log) == ["<Task 1 'main'> GetTid() -> resumed with 1",
                             "<Task 1 'main'> exited: returned"]


@pytest.mark.parametrize("value", ["0", ""])
def test_trace_env_var_zero_means_off(monkeypatch, log, value):
    """PYOS_TRACE=0 (or empty) leaves tracing off, as the usual convention goes."""
    def main():
        yield GetTid()

    monkeypatch.setenv("PYOS_TRACE", value)
    run(main())
    assert log == []
