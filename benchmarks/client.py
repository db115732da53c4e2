"""The echo load client: one bare, non-blocking epoll loop in one process.

Why this shape: on a 2-core machine the client competes with the server for CPU, so each
round trip must cost the client as little as Python allows.  One level-triggered epoll
watches every connection; per-connection state lives in lists indexed by descriptor;
there is no object per message.  Each connection sends a message, waits for all of it to
come back, checks every byte, and sends the next (messages rotate through a few random
patterns, so a server that echoed stale or misplaced bytes is caught).

Phases: connect in small batches (each batch does one round trip before the next is
opened, which keeps the server's accept backlog short); run every connection for a
warm-up; measure a window, reading the server's utime/stime from /proc/<pid>/stat at its
edges (its worker processes' too, if it has any); stop sending, drain what is in flight,
close.  Prints one JSON object on stdout.

    python benchmarks/client.py --port P --conns N --size BYTES --duration S --server-pid PID
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import sys
import time
from typing import Any

from common import HOST, machine_busy, raise_nofile, self_cpu, tree_cpu

PATTERNS = 7  # distinct messages each connection cycles through
IN, OUT = select.EPOLLIN, select.EPOLLOUT


class EchoError(Exception):
    """The server sent something other than what it was sent, or closed, or stalled."""


class Load:
    """N connections to one echo server, and the loop that drives them."""

    def __init__(self, port: int, size: int, seed: int = 1) -> None:
        rnd = random.Random(seed)
        self.port = port
        self.msgs = [rnd.randbytes(size) for _ in range(PATTERNS)]
        self.ep = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.want: list[Any] = []   # fd -> message in flight, or None when idle
        self.got: list[int] = []    # fd -> how many of its bytes came back so far
        self.turn: list[int] = []   # fd -> round trips done (picks the next pattern)
        self.unsent: dict[int, memoryview] = {}  # fd -> tail of a message not yet sent
        self.done = 0               # round trips completed, all time
        self.idle = 0               # connections with no message in flight

    def connect(self, count: int) -> None:
        """Open count more connections; each starts idle (the caller sends)."""
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.connect((HOST, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            fd = sock.fileno()
            self.socks[fd] = sock
            grow = fd + 1 - len(self.want)
            if grow > 0:
                self.want += [None] * grow
                self.got += [0] * grow
                self.turn += [0] * grow
            self.want[fd], self.got[fd], self.turn[fd] = None, 0, fd
            self.ep.register(fd, IN)
            self.idle += 1

    def start(self, fds: list[int]) -> None:
        """Send the next message on each idle connection in fds."""
        for fd in fds:
            if self.want[fd] is None:
                self.idle -= 1
                self._send(fd)

    def _send(self, fd: int) -> None:
        turn = self.turn[fd] = self.turn[fd] + 1
        msg = self.want[fd] = self.msgs[turn % PATTERNS]
        self.got[fd] = 0
        try:
            sent = self.socks[fd].send(msg)
        except BlockingIOError:
            sent = 0
        if sent < len(msg):
            self.unsent[fd] = memoryview(msg)[sent:]
            self.ep.modify(fd, IN | OUT)

    def _flush(self, fd: int) -> None:
        rest = self.unsent[fd]
        try:
            sent = self.socks[fd].send(rest)
        except BlockingIOError:
            return
        if sent < len(rest):
            self.unsent[fd] = rest[sent:]
        else:
            del self.unsent[fd]
            self.ep.modify(fd, IN)

    def pump(self, until: float, sending: bool, idle_goal: int | None = None,
             stall: float = 15.0) -> None:
        """Run round trips until the clock passes until, or idle reaches idle_goal.

        sending: start the next message as soon as one completes (otherwise go idle).
        """
        poll, recv_of, clock = self.ep.poll, self.socks, time.perf_counter
        want, got, turn, msgs, unsent = self.want, self.got, self.turn, self.msgs, self.unsent
        last_progress = clock()
        done = self.done
        while True:
            now = clock()
            if now >= until or (idle_goal is not None and self.idle >= idle_goal):
                break
            if done != self.done:
                self.done, last_progress = done, now
            elif now - last_progress > stall:
                raise EchoError(f"no echo for {stall:.0f} s ({self.idle} of "
                                f"{len(self.socks)} connections idle)")
            for fd, ev in poll(min(until - now, 0.05)):
                if ev & OUT and fd in unsent:
                    self._flush(fd)
                msg = want[fd]
                if msg is None:
                    raise EchoError(f"fd {fd}: the server sent data nobody asked for")
                g = got[fd]
                try:
                    data = recv_of[fd].recv(len(msg) - g)
                except BlockingIOError:
                    continue
                if g == 0 and data == msg:
                    pass  # the common case: the whole message in one piece
                elif not data:
                    raise EchoError(f"fd {fd}: the server closed after {g} of {len(msg)} bytes")
                else:
                    n = g + len(data)
                    if data != msg[g:n]:
                        raise EchoError(f"fd {fd}: bytes {g}..{n} differ from what was sent")
                    if n < len(msg):
                        got[fd] = n
                        continue
                done += 1
                if sending:
                    t = turn[fd] = turn[fd] + 1
                    msg = want[fd] = msgs[t % PATTERNS]
                    got[fd] = 0
                    try:
                        sent = recv_of[fd].send(msg)
                    except BlockingIOError:
                        sent = 0
                    if sent < len(msg):
                        unsent[fd] = memoryview(msg)[sent:]
                        self.ep.modify(fd, IN | OUT)
                else:
                    want[fd] = None
                    self.idle += 1
        self.done = done

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.ep.close()


def run(port: int, conns: int, size: int, duration: float, warmup: float,
        server_pid: int, batch: int) -> dict[str, Any]:
    """Connect, warm up, measure one window, drain; return the measurements."""
    raise_nofile(conns + 256)
    load = Load(port, size)
    t_connect = time.perf_counter()
    opened = 0
    while opened < conns:  # a batch must finish a round trip before the next connects
        n = min(batch, conns - opened)
        load.connect(n)
        opened += n
        load.start(list(load.socks)[-n:])
        load.pump(float("inf"), sending=False, idle_goal=opened)
    connect_s = time.perf_counter() - t_connect
    load.start(list(load.socks))
    load.pump(time.perf_counter() + warmup, sending=True)
    # The measured window.
    s0, c0, n0, m0 = tree_cpu(server_pid), self_cpu(), load.done, machine_busy()
    t0 = time.perf_counter()
    load.pump(t0 + duration, sending=True)
    t1 = time.perf_counter()
    s1, c1, n1, m1 = tree_cpu(server_pid), self_cpu(), load.done, machine_busy()
    load.pump(float("inf"), sending=False, idle_goal=conns)  # drain: check every byte
    checked = load.done * size
    load.close()
    return {
        "conns": conns, "size": size, "round_trips": n1 - n0, "wall": t1 - t0,
        "server_user": s1[0] - s0[0], "server_sys": s1[1] - s0[1],
        "client_user": c1[0] - c0[0], "client_sys": c1[1] - c0[1], "machine_busy": m1 - m0,
        "connect_s": connect_s, "bytes_checked": 2 * checked, "total_round_trips": load.done,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--conns", type=int, default=10)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.3)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--cpu", type=int, help="run on this CPU only")
    parser.add_argument("--batch", type=int, default=50,
                        help="connections opened at a time (pyos drops its listener task "
                             "after 64 accepts in a row, so keep this below 64)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    try:
        result = run(args.port, args.conns, args.size, args.duration, args.warmup,
                     args.server_pid, args.batch)
    except (EchoError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
