"""Introspection: task names, ps, the SIGUSR1 dump, deadlock reports, slow-task warnings.

Trace mode has its own file, test_trace.py.  Only the slow-task tests sleep for real, and
the echo-server test runs the demo as a subprocess with every read bounded in time.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fill_socket

import pyos
from pyos import (
    Deadlock,
    KillTask,
    NewTask,
    Ps,
    ReadWait,
    Sleep,
    SystemCall,
    TaskInfo,
    TaskKilled,
    WaitTask,
    WriteWait,
    format_ps,
)

ROOT = Path(__file__).resolve().parent.parent
HERE = os.path.basename(__file__)


def line_of(func, text: str) -> int:
    """The line number of the one line of func's source that contains text."""
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def by_name(infos: list[TaskInfo]) -> dict[str, TaskInfo]:
    return {info.name: info for info in infos}


def ticker():
    yield


def ticker_sleep(seconds):
    yield Sleep(seconds)


def read_wait(sock):
    yield ReadWait(sock)


def wait_for(tid):
    yield WaitTask(tid)


async def await_for(tid):
    await WaitTask(tid)


class Park(SystemCall):
    """A user-defined call that hands the task to nobody: it never runs again."""

    def handle(self) -> None:
        pass


def parked():
    yield Park()


# -- Names ------------------------------------------------------------------------------
def test_default_and_explicit_names(sched):
    """A task is named after its function's __qualname__ unless given a name."""
    def nested():
        yield

    async def coro():
        pass

    seen = []

    def main():
        yield NewTask(nested(), name="child")
        yield NewTask(ticker())
        seen.extend((yield Ps()))

    sched.new(ticker())
    sched.new(nested())
    sched.new(coro())
    sched.new(ticker(), name="custom")
    sched.new(main())
    assert [i.name for i in sched.ps()] == [
        "ticker", "test_default_and_explicit_names.<locals>.nested",
        "test_default_and_explicit_names.<locals>.coro", "custom",
        "test_default_and_explicit_names.<locals>.main",
    ]
    sched.mainloop()
    assert [(i.tid, i.name) for i in seen[-3:]] == [
        (5, "test_default_and_explicit_names.<locals>.main"), (6, "child"), (7, "ticker"),
    ]


# -- ps ---------------------------------------------------------------------------------
def test_ps_outside_mainloop(sched):
    """Before it first runs a task is ready with no runs and no CPU; afterwards ps is empty."""
    sched.new(ticker(), name="t")
    [info] = sched.ps()
    assert (info.tid, info.name, info.state, info.runs, info.cpu) == (1, "t", "ready", 0, 0.0)
    assert info.stack[-1][2] == "ticker"
    sched.mainloop()
    assert sched.ps() == []


def test_ps_states_of_blocked_tasks(sched, socketpair):
    """Ps shows each task's exact state: sleeping, read/write waits, task waits, ready."""
    reader_sock = socketpair[0]
    other = socket.socketpair()
    writer_sock = other[0]
    writer_sock.setblocking(False)
    fds = reader_sock.fileno(), writer_sock.fileno()
    infos = []

    def joiner(tid):
        try:
            yield WaitTask(tid)
        except TaskKilled:
            pass

    def writer():
        fill_socket(writer_sock)
        yield WriteWait(writer_sock)

    def main():
        sleeper = yield NewTask(ticker_sleep(1.5), name="sleeper")
        reader = yield NewTask(read_wait(reader_sock), name="reader")
        writer_tid = yield NewTask(writer(), name="writer")
        yield NewTask(joiner(sleeper), name="joiner")
        yield                                  # every child runs once and blocks
        yield NewTask(ticker(), name="fresh")
        infos.extend((yield Ps()))
        for tid in (sleeper, reader, writer_tid):
            yield KillTask(tid)

    try:
        sched.new(main(), name="main")
        sched.mainloop()
    finally:
        other[0].close()
        other[1].close()
    states = {i.name: (i.state, i.runs) for i in infos}
    sleeping = states.pop("sleeper")
    assert re.fullmatch(r"sleeping for 1\.\d{3}s more", sleeping[0]), sleeping
    assert 1.0 < float(sleeping[0].split()[2][:-1]) <= 1.5
    assert states == {
        "main": ("running", 1),
        "reader": (f"waiting to read fd {fds[0]}", 1),
        "writer": (f"waiting to write fd {fds[1]}", 1),
        "joiner": ("waiting for task 2", 1),
        "fresh": ("ready", 0),
    }
    assert [i.tid for i in infos] == [1, 2, 3, 4, 5, 6]
    where = {i.name: i.where.split(":")[2] for i in infos}
    assert where == {"main": "main", "sleeper": "ticker_sleep", "reader": "read_wait",
                     "writer": "writer", "joiner": "joiner", "fresh": "ticker"}


def test_ps_counts_runs(sched):
    """runs counts every resume: 3 bare yields then a blocking call make 4 runs."""
    infos = []

    def worker():
        for _ in range(3):
            yield
        yield WaitTask(1)

    def main():
        yield NewTask(worker(), name="worker")
        for _ in range(10):
            yield
        infos.extend((yield Ps()))   # main's 11th run: the one in progress is not counted

    sched.new(main(), name="main")
    sched.mainloop()
    assert [(i.name, i.state, i.runs) for i in infos] == [
        ("main", "running", 10), ("worker", "waiting for task 1", 4),
    ]


def deepest():
    return (yield Ps())


def deeper():
    return (yield from deepest())


def middle():
    return (yield deeper())        # a trampoline call


def test_ps_stack_follows_yield_from_and_trampoline(sched):
    """The stack lists every frame, trampoline and yield-from alike, innermost last."""
    infos = []

    def main():
        infos.extend((yield from middle()))

    sched.new(main(), name="main")
    sched.mainloop()
    [info] = infos
    assert [f[2] for f in info.stack] == ["main", "middle", "deeper", "deepest"]
    assert info.stack[-1][:2] == (__file__, line_of(deepest, "yield Ps()"))
    assert info.where == f"{HERE}:{line_of(deepest, 'yield Ps()')}:deepest"


def test_ps_stack_of_async_task_ends_in_user_code(sched):
    """An async task's stack ends at its own await, not inside SystemCall.__await__."""
    infos = []

    async def inner():
        infos.extend(await Ps())

    async def outer():
        await inner()

    sched.new(outer(), name="outer")
    sched.mainloop()
    [info] = infos
    assert [f[2] for f in info.stack] == ["outer", "inner"]
    assert info.where == f"{HERE}:{line_of(inner, 'await Ps()')}:inner"


def test_where_and_format_ps():
    """format_ps renders a ps-like table; stacks=True adds each frame under its row."""
    sockets_py = os.path.join(os.path.dirname(pyos.__file__), "sockets.py")
    infos = [
        TaskInfo(1, "main", "running", 3, 0.0125,
                 (("/src/prog.py", 10, "main"), (sockets_py, 67, "recv"))),
        TaskInfo(12, "a-very-long-task-name-indeed", "waiting for task 1", 0, 0.0, ()),
        TaskInfo(13, "inside", "ready", 0, 0.0, ((sockets_py, 59, "accept"),)),
    ]
    assert infos[0].where == "prog.py:10:main"   # the program's own frame, not pyos's
    assert infos[1].where == "-"
    assert infos[2].where == "sockets.py:59:accept"  # nothing but pyos: its innermost
    header = ("  TID  NAME                     STATE                            RUNS"
              "   CPU(ms)  WHERE")
    row1 = ("    1  main                     running                             3"
            "      12.5  prog.py:10:main")
    row2 = ("   12  …y-long-task-name-indeed waiting for task 1                  0"
            "       0.0  -")
    assert format_ps(infos[:2]) == "\n".join([header, row1, row2])
    assert format_ps(infos[:2], stacks=True) == "\n".join(
        [header, row1, "       prog.py:10:main", "       sockets.py:67:recv", row2])
    assert format_ps([]) == header


# -- The SIGUSR1 dump -------------------------------------------------------------------
@pytest.fixture
def usr1():
    """Restore SIGUSR1's handler after a test installs the dump on it."""
    old = signal.getsignal(signal.SIGUSR1)
    yield signal.SIGUSR1
    signal.signal(signal.SIGUSR1, old)


def test_dump_on_signal_prints_stacks_and_carries_on(sched, usr1, capsys):
    """The signal prints every task with its stack to stderr; the program goes on."""
    done = []

    def main():
        tid = yield NewTask(ticker_sleep(5), name="sleeper")
        yield
        os.kill(os.getpid(), usr1)
        yield KillTask(tid)
        done.append(True)

    sched.dump_on_signal(usr1)
    sched.new(main(), name="main")
    sched.mainloop()
    err = capsys.readouterr().err
    assert done == [True]
    title, *lines = err.splitlines()
    assert re.fullmatch(rf"--- pyos ps: pid {os.getpid()}, 2 tasks, SIGUSR1 at "
                        r"\d\d:\d\d:\d\d ---", title), title
    assert lines[0].split() == ["TID", "NAME", "STATE", "RUNS", "CPU(ms)", "WHERE"]
    sleep_line = line_of(ticker_sleep, "yield Sleep")
    assert re.fullmatch(rf"    2  sleeper +sleeping for (4\.\d{{3}}|5\.000)s more +1 +\d+\.\d"
                        rf"  {HERE}:{sleep_line}:ticker_sleep", lines[3]), lines[3]
    assert lines[4] == f"       {HERE}:{sleep_line}:ticker_sleep"
    assert lines[1].startswith("    1  main ")
    assert lines[2] == f"       {HERE}:{line_of(main, 'os.kill')}:main"
    assert len(lines) == 5


def test_dump_shows_the_task_that_hogs_the_cpu(sched, usr1, capsys):
    """A dump taken while a task spins names it as running, with the CPU it has used."""
    def spinner():
        yield
        deadline = time.perf_counter() + 0.05
        while time.perf_counter() < deadline:
            pass
        os.kill(os.getpid(), usr1)

    sched.dump_on_signal(usr1)
    sched.new(spinner(), name="spinner")
    sched.mainloop()
    row = capsys.readouterr().err.splitlines()[2].split()
    assert row[:4] == ["1", "spinner", "running", "1"]
    assert float(row[4]) >= 50.0


class Stream:
    """Accumulates what a subprocess writes to one pipe; reads are bounded in time."""

    def __init__(self, pipe) -> None:
        self.fd = pipe.fileno()
        self.text = ""

    def read_until(self, pattern: str, start: int = 0, timeout: float = 5.0) -> re.Match:
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            if match := re.compile(pattern, re.M).search(self.text, start):
                return match
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                break
            chunk = os.read(self.fd, 65536).decode()
            if not chunk:
                break
            self.text += chunk
        raise AssertionError(f"{pattern!r} never appeared in:\n{self.text}")


@pytest.fixture
def echo_server():
    """The echo server demo, with SIGUSR1 dumps on; killed whatever happens."""
    env = {k: v for k, v in os.environ.items() if k != "PYOS_TRACE"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "demos" / "echo_server.py"), "--port", "0", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    try:
        out, err = Stream(proc.stdout), Stream(proc.stderr)
        match = out.read_until(r"listening on (\S+):(\d+)$", timeout=10)
        yield proc, (match[1], int(match[2])), err
    finally:
        proc.kill()
        proc.wait(timeout=5)
        proc.stdout.close()
        proc.stderr.close()


def dump_until(proc, err: Stream, pattern: str) -> re.Match:
    """Send SIGUSR1 until a dump matches pattern: a task may be mid-run at the first one."""
    start = len(err.text)
    for _ in range(25):
        proc.send_signal(signal.SIGUSR1)
        try:
            return err.read_until(pattern, start, timeout=0.2)
        except AssertionError:
            continue
    return err.read_until(pattern, start, timeout=0)


def echo(client: socket.socket, data: bytes) -> bytes:
    client.sendall(data)
    got = b""
    for _ in range(100):
        if len(got) >= len(data):
            break
        chunk = client.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.timeout(30)
def test_echo_server_dumps_tasks_on_sigusr1(echo_server):
    """kill -USR1 prints every task and its stack; the server keeps serving."""
    proc, address, err = echo_server
    with socket.create_connection(address, timeout=5) as one:
        assert echo(one, b"ping") == b"ping"      # its task has run (or is finishing)
        port1 = one.getsockname()[1]
        fd = r"waiting to read fd \d+ +"
        dump_until(proc, err, rf"^ +2  client {port1} +{fd}\d+ +\d+\.\d  echo_server\.py:\d+:"
                   r"handle\n +echo_server\.py:\d+:handle\n +sockets\.py:\d+:recv$")
        table = err.text
        assert re.search(r"^  TID  NAME +STATE +RUNS +CPU\(ms\)  WHERE$", table, re.M)
        assert re.search(rf"^ +1  listener +{fd}\d+ +\d+\.\d  echo_server\.py:\d+:serve\n"
                         r" +echo_server\.py:\d+:serve\n +sockets\.py:\d+:accept$",
                         table, re.M), table
        assert proc.poll() is None
        assert echo(one, b"still there") == b"still there"
        with socket.create_connection(address, timeout=5) as two:
            assert echo(two, b"hello") == b"hello"
            dump_until(proc, err, rf"^ +3  client {two.getsockname()[1]} +{fd}")
    assert proc.poll() is None


# -- Deadlock reports -------------------------------------------------------------------
def deadlock(sched, *tasks) -> list[str]:
    """Start (name, target) tasks, run until Deadlock, return the report's lines."""
    for name, target in tasks:
        sched.new(target, name=name)
    with pytest.raises(Deadlock) as info:
        sched.mainloop()
    assert sched.ps() == []                  # every task was unwound
    lines = str(info.value).splitlines()
    assert lines[0].startswith("no task can ever run again")
    return lines[1:]


WAIT_AT = f"at {HERE}:{line_of(wait_for, 'yield WaitTask')}:wait_for"


def test_deadlock_two_cycle(sched):
    """Two tasks waiting for each other: the cycle, then each task, where it waits."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {WAIT_AT}",
        f"  task 2 (b) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_three_cycle(sched):
    """A three-task cycle is named in full, starting from the lowest tid."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(3)), ("c", wait_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 3 (c) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {WAIT_AT}",
        f"  task 2 (b) waiting for task 3 {WAIT_AT}",
        f"  task 3 (c) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_chain_into_cycle(sched):
    """Tasks queued behind a cycle are listed, but the cycle names only its members."""
    assert deadlock(sched, ("d", wait_for(2)), ("a", wait_for(3)), ("b", wait_for(2)),
                    ("e", wait_for(1))) == [
        "wait-for cycle: task 2 (a) -> task 3 (b) -> task 2 (a)",
        f"  task 1 (d) waiting for task 2 {WAIT_AT}",
        f"  task 2 (a) waiting for task 3 {WAIT_AT}",
        f"  task 3 (b) waiting for task 2 {WAIT_AT}",
        f"  task 4 (e) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_two_separate_cycles(sched):
    """Each independent cycle gets its own line."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(1)),
                    ("c", wait_for(4)), ("d", wait_for(3)))[:2] == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        "wait-for cycle: task 3 (c) -> task 4 (d) -> task 3 (c)",
    ]


def test_deadlock_without_cycle(sched):
    """A task waiting on a task that nothing will wake: no cycle line, both listed."""
    lines = deadlock(sched, ("a", wait_for(2)), ("b", parked()))
    assert not any("cycle" in line for line in lines)
    assert len(lines) == 2
    assert lines[0] == f"  task 1 (a) waiting for task 2 {WAIT_AT}"
    assert lines[1].startswith("  task 2 (b) ")
    assert lines[1].endswith(f" at {HERE}:{line_of(parked, 'yield Park()')}:parked")


def test_parked_task_is_not_called_ready(sched):
    """A task parked by a user-defined call is blocked, and ps and Deadlock say so."""
    seen = []

    def main():
        yield
        seen.extend((yield Ps()))

    sched.new(parked(), name="b")
    sched.new(main(), name="main")
    b_line, a_line = deadlock(sched, ("a", wait_for(1)))
    assert a_line == f"  task 3 (a) waiting for task 1 {WAIT_AT}"
    assert seen[0].state != "ready"
    assert "ready" not in b_line and "Park()" in b_line, b_line


def test_deadlock_in_async_tasks_names_user_code(sched):
    """For async tasks the report points at the task's own await."""
    at = f"at {HERE}:{line_of(await_for, 'await WaitTask')}:await_for"
    assert deadlock(sched, ("a", await_for(2)), ("b", await_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {at}",
        f"  task 2 (b) waiting for task 1 {at}",
    ]


# -- Slow-task warnings -----------------------------------------------------------------
def hog(seconds):
    time.sleep(seconds)
    yield                              # the hog stops here


def slow_records(caplog, **options) -> list[logging.LogRecord]:
    """Run a task that blocks for 40 ms under Scheduler(**options); its warnings."""
    sched = pyos.Scheduler(**options)
    try:
        sched.new(hog(0.04), name="hog")
        sched.mainloop()
    finally:
        sched.close()
    return [r for r in caplog.records if r.name == "pyos" and r.levelno >= logging.WARNING]


def test_slow_task_warns_with_name_and_where(caplog):
    """A task over 0.1 s is reported once at WARNING, with where it stopped; CPU counts it."""
    caplog.set_level(logging.WARNING, logger="pyos")
    infos = []

    def main():
        yield hog(0.15)
        infos.extend((yield Ps()))

    sched = pyos.Scheduler()
    try:
        sched.new(main(), name="slowpoke")
        sched.mainloop()
    finally:
        sched.close()
    [record] = [r for r in caplog.records if r.name == "pyos"]
    assert record.levelno == logging.WARNING
    match = re.fullmatch(r"<Task 1 'slowpoke'> ran (\d+) ms without yielding; "
                         r"it is now at (.+):(\d+) in hog", record.getMessage())
    assert match, record.getMessage()
    assert 150 <= int(match[1]) < 1000
    assert (match[2], int(match[3])) == (__file__, line_of(hog, "the hog stops here"))
    assert infos[0].runs == 1 and infos[0].cpu >= 0.15


def test_slow_task_threshold_is_configurable(caplog):
    """slow_task sets the threshold; None turns the warning off."""
    caplog.set_level(logging.WARNING, logger="pyos")
    assert len(slow_records(caplog, slow_task=0.02)) == 1
    caplog.clear()
    assert slow_records(caplog, slow_task=None) == []
    assert slow_records(caplog, slow_task=1.0) == []
    assert slow_records(caplog) == []            # the default is 0.1 s


def test_fast_tasks_are_not_reported(sched, caplog):
    """Thousands of quick runs never trigger the warning."""
    caplog.set_level(logging.DEBUG, logger="pyos")

    def quick():
        for _ in range(2000):
            yield

    sched.new(quick())
    sched.new(quick())
    sched.mainloop()
    assert caplog.records == []
