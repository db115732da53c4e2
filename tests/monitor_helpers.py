"""Shared by the monitor's tests: a client that reads answers up to the prompt, and
``converse``, which runs a scheduler in the test's thread while a client talks to it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pyos
from pyos import GetTid, KillTask, Sleep
from pyos.monitor.address import parse_address
from pyos.monitor.server import PROMPT

__all__ = ["LIMIT", "Client", "converse", "names", "sleeper"]

LIMIT = 10.0   # seconds any one exchange may take before the test fails


# -- A client, and a kernel to talk to --------------------------------------------------
class Client:
    """A monitor connection that reads each answer up to its prompt."""

    def __init__(self, address: str) -> None:
        parsed = parse_address(address, client=True)
        if parsed.kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(LIMIT)
            self.sock.connect(parsed.path)
        else:
            self.sock = socket.create_connection((parsed.host, parsed.port), timeout=LIMIT)
        self.greeting = self.read()

    def read(self) -> str:
        data = b""
        while not data.endswith(PROMPT):
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before the prompt, after {data!r}"
            data += chunk
        return data[:-len(PROMPT)].decode()

    def ask(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self.read().rstrip("\n")

    def close(self) -> None:
        self.sock.close()


def converse(sched: pyos.Scheduler, talk: Callable[[], object], *targets) -> object:
    """Run targets and a keeper task in sched, talk() in a thread; return what talk returns.

    The keeper keeps the kernel alive (sleeping, so it blocks in its poll) until talk is
    done, then kills every task left, so the main loop ends.
    """
    outcome: dict[str, object] = {}
    done = threading.Event()

    def client() -> None:
        try:
            outcome["value"] = talk()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    def keeper():
        me, deadline = (yield GetTid()), time.monotonic() + LIMIT
        while not done.is_set() and time.monotonic() < deadline:
            yield Sleep(0.01)
        for task in sched.tasks():
            if task.tid != me:
                yield KillTask(task.tid)

    for target in targets:
        sched.new(target)
    sched.new(keeper(), name="keeper")
    thread = threading.Thread(target=client)
    thread.start()
    try:
        sched.mainloop()
    finally:
        thread.join(LIMIT)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]



def names(ps: str) -> set[str]:
    """The task names in a ps answer."""
    return {row.split()[1] for row in ps.splitlines()[2:]}


def sleeper(seconds: float = 30):
    yield Sleep(seconds)
