"""The kernel's own cost per echo round trip: pyos against the leanest loop, no system calls.

    .venv/bin/python benchmarks/kernel_cost.py [--conns 10] [--rounds 20000] [--repeat 7]

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

A second figure runs the same handler with every recv under ``timeout_after(60, ...)``
(benchmarks/servers/pyos_timeout_server.py's, a deadline that never fires): its
difference from pyos is what a timeout costs per round trip, without the operating
system's share, which in echo moves more than the timeout itself.  The three loops take
turns, repeat by repeat, and each figure is the best of its repeats.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import socket
import sys
import time
from collections.abc import Callable, Iterator
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


def timed_handler(client: pyos.Socket) -> Iterator[Any]:
    """handler() with a deadline on every recv, as a server's idle timeout would be."""
    while data := (yield from pyos.timeout_after(60, client.recv(65536))):
        yield from client.sendall(data)


def pyos_ns(conns: int, rounds: int, target: Callable[[pyos.Socket], Iterator[Any]] = handler
            ) -> float:
    sched = pyos.Scheduler()
    sched._poller.close()
    sched._poller = EveryoneReady(rounds)
    fakes = [FakeSocket() for _ in range(conns)]
    for fake in fakes:
        sched.new(target(pyos.Socket(fake)))  # type: ignore[arg-type]
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


def profile(conns: int, rounds: int, top: int) -> None:
    """cProfile of the timed handler's loop: own time and calls per round trip, by function.

    The profiler slows Python several-fold: read the calls and the shares, not the times.
    """
    prof = cProfile.Profile()
    prof.runcall(pyos_ns, conns, rounds, timed_handler)
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    trips = conns * rounds
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"{'calls/rt':>8} {'own ns/rt':>9}  function (under cProfile)")
    for (path, line, func), (_cc, calls, own, _cum, _callers) in rows:
        where = f"{Path(path).name}:{line}" if path != "~" else "builtin"
        print(f"{calls / trips:8.2f} {own / trips * 1e9:9.0f}  {func} ({where})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true",
                        help="profile the handler with timeout_after instead of timing")
    parser.add_argument("--json", action="store_true", help="one JSON object (for run.py)")
    args = parser.parse_args()
    if args.profile:
        profile(args.conns, args.rounds // 4, 25)
        return
    runs: dict[str, Callable[[], float]] = {
        "pyos": lambda: pyos_ns(args.conns, args.rounds),
        "floor": lambda: floor_ns(args.conns, args.rounds),
        "timeout": lambda: pyos_ns(args.conns, args.rounds, timed_handler),
    }
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(args.repeat):   # in turns, so that a slow spell hits all three alike
        for name, run in runs.items():
            best[name] = min(best[name], run())
    pyos_, floor, timed = best["pyos"], best["floor"], best["timeout"]
    if args.json:
        print(json.dumps({"pyos_ns": pyos_, "floor_ns": floor, "timeout_ns": timed,
                          "conns": args.conns, "repeat": args.repeat}))
        return
    print(f"pyos    {pyos_:6.0f} ns per round trip ({args.conns} connections, best of "
          f"{args.repeat})\nfloor   {floor:6.0f} ns\nkernel  {pyos_ - floor:6.0f} ns per round "
          f"trip for ids, accounting, checks and fault isolation (pyos / floor "
          f"{pyos_ / floor:.2f}x)\ntimeout {timed:6.0f} ns with timeout_after(60, recv) on "
          f"every recv: {timed - pyos_:.0f} ns more per round trip, round trips at "
          f"{pyos_ / timed:.2f}x of pyos's without the OS's share, which dilutes it in echo)")


if __name__ == "__main__":
    main()
