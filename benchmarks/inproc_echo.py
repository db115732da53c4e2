"""CPU per echo round trip with both ends in one pyos process: a steady hot-path gauge.

    .venv/bin/python benchmarks/inproc_echo.py [--conns 10] [--rounds 20000]

Why: across processes, CPU per round trip on two shared cores moves by 5-10% from run
to run.  Here the echo handler (as in demos/echo_server.py) and a raw-socket client task
share one scheduler over socketpairs, and time.process_time() over the whole run is
repeatable to about 1%.  The figure includes the client's work, so it is for comparing
two versions of pyos on the same machine, not for comparing with other servers.
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
from pyos import ReadWait


def handler(client: pyos.Socket) -> Iterator[Any]:
    with client:
        while data := (yield from client.recv(65536)):
            yield from client.sendall(data)


def driver(raw: socket.socket, rounds: int, msg: bytes = b"x" * 100) -> Iterator[Any]:
    wait = ReadWait(raw)
    for _ in range(rounds):
        raw.send(msg)
        got = 0
        while got < len(msg):
            yield wait
            got += len(raw.recv(65536))
    raw.close()


def once(conns: int, rounds: int) -> float:
    """One run: microseconds of process CPU per round trip."""
    sched = pyos.Scheduler()
    for _ in range(conns):
        a, b = socket.socketpair()
        b.setblocking(False)
        sched.new(handler(pyos.Socket(a)))
        sched.new(driver(b, rounds))
    start = time.process_time()
    sched.mainloop()
    sched.close()
    return (time.process_time() - start) / (conns * rounds) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = min(once(args.conns, args.rounds) for _ in range(args.repeat))
    print(f"{best:.2f} us of CPU per round trip (handler and client together), best of "
          f"{args.repeat}")


if __name__ == "__main__":
    main()
