"""Helpers shared by several test files (fixtures live in conftest.py).

Tasks that record their steps, run-to-completion wrappers (plain, and with a watchdog
for socket tests), source-line lookup for introspection tests, and the echo-server
subprocess that the demo tests drive.  Every loop is bounded.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyos
from pyos import Sleep, SystemCall

DEMOS = Path(__file__).resolve().parent.parent / "demos"


# -- Timelines ----------------------------------------------------------------------------
def load_trace(path: Path) -> dict:
    """A timeline file (a Chrome trace), parsed."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def trace_slices(trace: dict, cat: str, tid: int | None = None) -> list[dict]:
    """The complete events of one category ("run" or "wait"), in time order."""
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == cat
            and (tid is None or e["tid"] == tid)]


# -- Tasks and running them ---------------------------------------------------------------
def record_steps(record: list[object], label: str, n: int):
    for i in range(n):
        record.append((label, i))
        yield


def noop():
    yield


def value_after(value: object, steps: int = 1):
    for _ in range(steps):
        yield
    return value


def catch(record: list[object], call: SystemCall, *errors: type[BaseException]):
    """Make call and record ("caught", type name) if it raises one of errors."""
    try:
        return (yield call)
    except errors as exc:
        record.append(("caught", type(exc).__name__))
    return None


def ticker_sleep(seconds):
    yield Sleep(seconds)


def run(sched: pyos.Scheduler, *targets: object) -> None:
    """Start targets as tasks, in order, and run them all to completion."""
    for target in targets:
        sched.new(target)
    sched.mainloop()


def watchdog(sched: pyos.Scheduler, limit: float):
    """Kill every other task still there after limit seconds: a bug fails the test, not hangs."""
    me, deadline = (yield pyos.GetTid()), time.monotonic() + limit
    while set(sched._tasks) != {me} and time.monotonic() < deadline:
        yield pyos.Sleep(0.02)
    for tid in set(sched._tasks) - {me}:
        yield pyos.KillTask(tid)
        yield   # one call per turn: never rely on the kernel's calls_per_turn budget


def run_watched(sched: pyos.Scheduler, *targets, limit: float = 10.0) -> None:
    """run(), plus a watchdog task that ends the others after limit seconds."""
    for target in targets:
        sched.new(target)
    sched.new(watchdog(sched, limit))
    sched.mainloop()


# -- Introspection ------------------------------------------------------------------------
def line_of(func, text: str) -> int:
    """The line number of the one line of func's source that contains text."""
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


# -- The echo server demo as a subprocess -------------------------------------------------
class Server:
    """A running echo server: its process, port and stderr (a file: it never blocks on it)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr_path = tmp_path / f"server-{time.monotonic_ns()}.err"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DEMOS / "echo_server.py"), "--port", "0", *args],
                stdout=subprocess.PIPE, stderr=err)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        match = re.search(r"listening on ([\d.]+):(\d+)", line)
        assert match, f"no 'listening on' line within 10 s: {line!r}"
        self.port = int(match.group(2))

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def status(self, field: str) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(rf"^{field}:\s+(\d+)", text, re.M).group(1))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def idle(self) -> bool:
        """Is the server asleep in the kernel (blocked in its poller)?"""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] == "S"

    def interrupt(self, timeout: float = 5.0) -> float:
        """SIGINT; return how long it took to exit."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout)
        return time.monotonic() - start


def wait_for(predicate, limit: float = 5.0) -> bool:
    """Poll predicate every 20 ms for up to limit seconds (for another process's progress)."""
    deadline = time.monotonic() + limit
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def round_trip(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    got = b""
    while len(got) < len(data) and (chunk := sock.recv(65536)):
        got += chunk
    return got
