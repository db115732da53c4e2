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
from pyos import NewTask, ReadWait, Sleep, SystemCall, WaitQueue, WaitTask, WriteWait

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


# -- One wait of each kind, for the cancellation and timeout tests ---------------------
KINDS = ["Sleep", "ReadWait", "WriteWait", "WaitTask", "park"]


def held(q: WaitQueue):
    """A task that stays until q is woken: what a WaitTask in these tests waits for."""
    return (yield q.park())


class Waits:
    """One blocking point of each kind on one scheduler, and what each one leaves behind."""

    def __init__(self, sched: pyos.Scheduler, a, b, as_fd=lambda s: s) -> None:
        self.sched, self.a, self.b = sched, a, b
        self.fd = as_fd(a)   # what ReadWait and WriteWait are given: a, or its number
        self.q = WaitQueue("q")
        self.hold = WaitQueue("hold")   # the task a WaitTask waits for is parked here
        self.other = 0

    def start(self):
        """Called by the main task first: the task to wait for; a full socket for writes."""
        from conftest import fill_socket  # (conftest imports this module)
        self.other = yield NewTask(held(self.hold), name="other")
        fill_socket(self.a)
        yield   # other parks

    def call(self, kind: str) -> SystemCall:
        """The call that parks its caller at a blocking point of this kind."""
        return {"Sleep": lambda: Sleep(3600), "ReadWait": lambda: ReadWait(self.fd),
                "WriteWait": lambda: WriteWait(self.fd), "WaitTask": lambda: WaitTask(self.other),
                "park": self.q.park}[kind]()

    def left_behind(self) -> dict[str, int]:
        """Whatever a wait could leave in the kernel's tables (all 0 when nothing is)."""
        joiners = self.sched._joins.get(self.other)
        poller = self.sched._poller
        return {"readers": len(poller.readers), "writers": len(poller.writers),
                "timers": len(self.sched._timers), "queue": len(self.q),
                "joiners": len(joiners) if joiners is not None else 0,
                "join entries": int(self.other in self.sched._joins),
                "cancels": len(self.sched._cancels)}

    def finish(self):
        """Let the task a WaitTask waits for go, and check the socket works for anyone."""
        from conftest import drain_socket
        self.b.send(b"ping")
        yield ReadWait(self.a)            # no ResourceBusy: nobody else waits there
        drain_socket(self.b)
        yield WriteWait(self.a)
        self.hold.wake()
        return self.a.recv(10)


NOTHING = {"readers": 0, "writers": 0, "timers": 0, "queue": 0, "joiners": 0,
           "join entries": 0, "cancels": 0}


class Park(SystemCall):
    """A user-defined call that parks its caller; only Unpark wakes it."""

    def __init__(self, parked: list) -> None:
        self.parked = parked

    def handle(self) -> None:
        self.parked.append(self.task)


class Unpark(SystemCall):
    def __init__(self, parked: list, value: object) -> None:
        self.parked, self.value = parked, value

    def handle(self) -> None:
        for task in self.parked:
            task.sendval = self.value
            self.sched.schedule(task)
        self.parked.clear()
        self.sched.schedule(self.task)


# -- Introspection ------------------------------------------------------------------------
def line_of(func, text: str) -> int:
    """The line number of the one line of func's source that contains text."""
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


# -- The demo servers as subprocesses -----------------------------------------------------
class Server:
    """A running demo server (the echo server unless told): its process, port and stderr
    (a file: it never blocks on it)."""

    def __init__(self, tmp_path: Path, *args: str, preexec_fn=None,
                 demo: str = "echo_server.py") -> None:
        self.stderr_path = tmp_path / f"server-{time.monotonic_ns()}.err"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DEMOS / demo), "--port", "0", *args],
                stdout=subprocess.PIPE, stderr=err, preexec_fn=preexec_fn)
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
