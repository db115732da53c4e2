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
import threading
import time
from pathlib import Path

import pytest
from helpers import line_of, ticker_sleep

from pyos import KillTask, NewTask, dump

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
        dump_until(proc, err, rf"^ +2  client 127\.0\.0\.1:{port1} +{fd}\d+ +\d+\.\d  "
                   r"echo_server\.py:\d+:echo\n +serve\.py:\d+:_connection\n"
                   r" +echo_server\.py:\d+:echo\n +sockets\.py:\d+:recv$")
        table = err.text
        assert re.search(r"^  TID  NAME +STATE +RUNS +CPU\(ms\)  WHERE$", table, re.M)
        assert re.search(rf"^ +1  listener +{fd}\d+ +\d+\.\d  echo_server\.py:\d+:serve\n"
                         r" +echo_server\.py:\d+:serve\n +serve\.py:\d+:serve\n"
                         r" +sockets\.py:\d+:accept$", table, re.M), table
        assert proc.poll() is None
        assert echo(one, b"still there") == b"still there"
        with socket.create_connection(address, timeout=5) as two:
            assert echo(two, b"hello") == b"hello"
            dump_until(proc, err, rf"^ +3  client 127\.0\.0\.1:{two.getsockname()[1]} +{fd}")
    assert proc.poll() is None


# -- A dump at scale, and to a pipe nobody reads -----------------------------------------
def test_dump_summarises_tasks_that_share_a_state_and_a_stack(sched, usr1, capsys):
    """1,000 tasks asleep at the same line are one row, its stack and a count, not 3,000
    lines; a task that differs is shown on its own."""
    def main():
        tids = []
        for i in range(1000):
            tids.append((yield NewTask(ticker_sleep(5), name=f"sleeper {i}")))
        yield
        os.kill(os.getpid(), usr1)
        for tid in tids:
            yield KillTask(tid)

    sched.dump_on_signal(usr1)
    sched.new(main(), name="main")
    sched.mainloop()
    title, *lines = capsys.readouterr().err.splitlines()
    assert "1001 tasks" in title
    assert len(lines) == 6, "\n".join(lines[:20])
    assert lines[1].startswith("    1  main ") and lines[3].startswith("    2  sleeper 0 ")
    assert lines[5] == "       +999 more tasks like task 2, same state and stack: 3-1001"


@pytest.fixture
def unread_stderr(monkeypatch):
    """Returns install(), which makes sys.stderr a pipe that is full and that nobody reads
    (yet), and read_until(text), which reads it until text arrives (a few seconds at
    most).  (Installed from the test itself: pytest resets sys.stderr after set-up.)"""
    r, w = os.pipe()
    os.set_blocking(w, False)
    for _ in range(10_000):   # bounded: a pipe holds at most a few MB
        try:
            os.write(w, b"." * 65536)
        except BlockingIOError:
            break
    os.set_blocking(w, True)   # as a real stderr is: a write to it would block

    def install() -> None:
        monkeypatch.setattr(sys, "stderr", open(w, "w", closefd=False))

    got = [b""]   # everything read so far

    def read_until(text: str, count: int = 1, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while got[0].count(text.encode()) < count and time.monotonic() < deadline:
            if select.select([r], [], [], 0.1)[0]:
                got[0] += os.read(r, 1 << 20)
        return got[0].decode(errors="replace")

    yield install, read_until
    os.close(r)   # the writer thread, if blocked, gets EPIPE and lets go
    os.close(w)


def test_dump_to_a_full_pipe_never_stalls_the_kernel(sched, usr1, unread_stderr):
    """With stderr a full pipe nobody reads, dumps never block the kernel: the program runs
    to its end while the pipe is still full, and the dumps come out once it is read.
    (A thread starts reading after 2 s, so that a dump that blocks fails the test rather
    than hanging it.)"""
    install, read_until = unread_stderr
    install()
    record, rescued = [], threading.Event()

    def rescue():
        rescued.set()
        read_until("--- pyos ps: pid", 3)

    def main():
        for i in range(3):
            os.kill(os.getpid(), usr1)
            record.append(i)
            yield

    sched.dump_on_signal(usr1)
    sched.new(main(), name="main")
    rescuer = threading.Timer(2.0, rescue)
    rescuer.start()
    try:
        sched.mainloop()
        finished_while_full = not rescued.is_set()
    finally:
        rescuer.cancel()
        rescuer.join()
    assert record == [0, 1, 2]
    assert finished_while_full, "a dump blocked the kernel until someone read the pipe"
    assert read_until("--- pyos ps: pid", 3).count("--- pyos ps: pid") == 3


def test_dumps_beyond_max_pending_are_dropped_with_a_note(sched, usr1, unread_stderr,
                                                          monkeypatch):
    """While the pipe stays full, dumps past MAX_PENDING bytes are dropped, not queued
    without end; the first dump written afterwards says how many were lost."""
    monkeypatch.setattr(dump, "MAX_PENDING", 4096)
    install, read_until = unread_stderr
    install()

    def main():
        for _ in range(40):          # about 500 bytes each: most cannot wait
            os.kill(os.getpid(), usr1)
            yield

    sched.dump_on_signal(usr1)
    sched.new(main(), name="main")
    sched.mainloop()
    for _ in range(50):   # read until the writer has written all it queued: 5 s at most
        read_until("--- pyos ps: pid", count=10_000, timeout=0.1)
        if all(w.queued == w.written for w in dump._writers.values()):
            break
    assert "--- pyos ps: pid" in read_until("--- pyos ps: pid")

    def again():
        os.kill(os.getpid(), usr1)
        yield

    sched.new(again(), name="again")
    sched.mainloop()
    text = read_until("  again  ")
    note = re.search(r"--- pyos: (\d+) earlier dump\(s\) dropped", text)
    assert note, text[-2000:]
    dumps = text.count("--- pyos ps: pid")
    assert int(note[1]) >= 1 and dumps + int(note[1]) == 41
