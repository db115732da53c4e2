"""The kernel's own cost per echo round trip: pyos against the leanest loop, no system calls.

    .venv/bin/python benchmarks/kernel_cost.py [--conns 10] [--rounds 20000]

Why: across processes, CPU per round trip moves by 5-10% from run to run, and most of it
is the operating system's (recv, send, epoll).  Here the echo handler of
demos/echo_server.py runs over fake sockets whose recv and send are C functions that
return at once (a dict's get, and len), and a fake poll phase reports every waiting
task ready.  What is left is pure Python, repeatable to a few percent:

* pyos: the Scheduler, with its epoll poller (real registrations on real descriptors,
  but its poll replaced), running the handler as a task;
* floor: a loop that only resumes each generator and files it under the descriptor it
  yields, with no ids, accounting, checks or fault isolation.

pyos minus floor is what the kernel's services cost per round trip; compare two versions
of pyos with it, not pyos with other servers (see `make bench` for that).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyos
from pyos.epoll import EpollPoller

MESSAGE = b"x" * 100


class FakeSocket:
    """Looks like a connected socket with a 100-byte message always waiting."""

    def __init__(self) -> None:
        self.pair = socket.socketpair()           # only for a real, registrable fd
        self.fileno = self.pair[0].fileno
        self.recv = {65536: MESSAGE}.get           # recv(65536) -> MESSAGE, in C
        self.send = len                            # send(data) -> all of it, in C

    def setblocking(self, flag: bool) -> None:
        pass

    def close(self) -> None:
        for sock in self.pair:
            sock.close()


class EveryoneReady(EpollPoller):
    """Every waiting reader is ready at every poll; stops after `rounds` polls."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds

    def poll(self, timeout: float | None) -> list[Any]:
        self.rounds -= 1
        if self.rounds < 0:
            raise KeyboardInterrupt   # ends mainloop, which unwinds every task
        woken = list(self.readers.values())
        self.readers.clear()
        return woken


def handler(client: pyos.Socket) -> Iterator[Any]:
    while data := (yield from client.recv(65536)):
        yield from client.sendall(data)


def pyos_ns(conns: int, rounds: int) -> float:
    sched = pyos.Scheduler()
    sched._poller.close()
    sched._poller = EveryoneReady(rounds)
    fakes = [FakeSocket() for _ in range(conns)]
    for fake in fakes:
        sched.new(handler(pyos.Socket(fake)))  # type: ignore[arg-type]
    start = time.perf_counter()
    try:
        sched.mainloop()
    except KeyboardInterrupt:
        pass
    elapsed = time.perf_counter() - start
    sched.close()
    for fake in fakes:
        fake.close()
    return elapsed / (conns * rounds) * 1e9


def floor_ns(conns: int, rounds: int) -> float:
    fakes = [FakeSocket() for _ in range(conns)]
    ready = [handler(pyos.Socket(fake)) for fake in fakes]  # type: ignore[arg-type]
    waiting: dict[int, Any] = {}
    start = time.perf_counter()
    for _ in range(rounds):
        for task in ready:
            waiting[task.send(None).fd] = task   # it yields its socket's ReadWait
        ready = list(waiting.values())
        waiting.clear()
    elapsed = time.perf_counter() - start
    for fake in fakes:
        fake.close()
    return elapsed / (conns * rounds) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    pyos_best = min(pyos_ns(args.conns, args.rounds) for _ in range(args.repeat))
    floor_best = min(floor_ns(args.conns, args.rounds) for _ in range(args.repeat))
    print(f"pyos  {pyos_best:6.0f} ns per round trip ({args.conns} connections, best of "
          f"{args.repeat})\nfloor {floor_best:6.0f} ns\nkernel {pyos_best - floor_best:5.0f} ns "
          f"per round trip for ids, accounting, checks and fault isolation")


if __name__ == "__main__":
    main()
