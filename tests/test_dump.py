"""The SIGUSR1 dump: every task with its stack on stderr, in-process and from the echo
server demo (run as a subprocess, with every read bounded in time).
"""

from __future__ import annotations

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
from helpers import line_of, ticker_sleep

from pyos import KillTask, NewTask

ROOT = Path(__file__).resolve().parent.parent
HERE = os.path.basename(__file__)
HELPERS = "helpers.py"   # where ticker_sleep is defined


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
                        rf"  {HELPERS}:{sleep_line}:ticker_sleep", lines[3]), lines[3]
    assert lines[4] == f"       {HELPERS}:{sleep_line}:ticker_sleep"
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
