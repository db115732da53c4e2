"""A client for the pyos echo server: try it by hand, or put load on it.

    python demos/echo_client.py [--host 127.0.0.1] [--port 25000]
    python demos/echo_client.py --conns 100 --rounds 1000 --size 100

Interactive mode (the default) sends each line you type and prints what comes back;
end with Ctrl-D.  Load mode (--conns) runs that many concurrent pyos tasks, each doing
--rounds round trips of --size bytes, checks every byte that comes back and prints the
round trips per second.  Both are written on pyos itself: open_connection, sendall, recv.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

import pyos
from pyos import ReadWait

DEFAULT_PORT = 25000  # the echo server's default (see echo_server.py)
PRIME = 251  # payloads shift by one byte per round, so a stale or misplaced echo shows


async def recv_exactly(sock: pyos.Socket, size: int) -> bytes:
    """Receive exactly size bytes, or raise ConnectionError if the server hangs up first."""
    buf = bytearray()
    while len(buf) < size:
        chunk = await sock.recv(size - len(buf))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(buf)} of {size} bytes")
        buf += chunk
    return bytes(buf)


async def load_client(args: argparse.Namespace, n: int, results: list) -> None:
    """One connection doing args.rounds round trips; appends (round trips, error or None)."""
    source = bytes((n * 7 + i) % 256 for i in range(args.size + PRIME))
    done = 0
    try:
        sock = await pyos.open_connection(args.host, args.port)
    except OSError as exc:
        results.append((0, f"connection {n}: cannot connect: {exc}"))
        return
    try:
        for r in range(args.rounds):
            payload = source[r % PRIME:r % PRIME + args.size]
            await sock.sendall(payload)
            echoed = await recv_exactly(sock, args.size)
            if echoed != payload:
                at = next(i for i, (a, b) in enumerate(zip(echoed, payload, strict=True)) if a != b)
                raise ValueError(f"round {r}: byte {at} came back as {echoed[at]}, "
                                 f"not {payload[at]}")
            done += 1
    except (OSError, ValueError) as exc:
        results.append((done, f"connection {n}: {exc}"))
    else:
        results.append((done, None))
    finally:
        await sock.close()


def load(args: argparse.Namespace) -> int:
    """Run the load test; print round trips per second; 1 if any byte came back wrong."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < args.conns + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.conns + 64), hard))
    sched = pyos.Scheduler(poller=args.poller)
    results: list[tuple[int, str | None]] = []
    for n in range(args.conns):
        sched.new(load_client(args, n, results), name=f"client {n}")
    start = time.perf_counter()
    try:
        sched.mainloop()
    finally:
        sched.close()
    elapsed = time.perf_counter() - start
    trips = sum(done for done, _ in results)
    errors = [error for _, error in results if error]
    print(f"{trips} round trips of {args.size} bytes over {args.conns} connections "
          f"in {elapsed:.2f}s: {trips / elapsed:,.0f} round trips/s")
    for error in errors[:10]:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"{len(errors)} of {args.conns} connections failed", file=sys.stderr)
    return 1 if errors else 0


async def keyboard(sock: pyos.Socket) -> None:
    """stdin -> server; at end of input, half-close so the server finishes and hangs up."""
    stdin = sys.stdin.fileno()
    try:
        while True:
            await ReadWait(stdin)
            data = os.read(stdin, 65536)
            if not data:
                break
            await sock.sendall(data)
        sock.shutdown()
    except ConnectionError:
        pass   # the server is gone; screen() has seen it too


async def screen(sock: pyos.Socket) -> None:
    """server -> stdout, until the server closes its side."""
    out = sys.stdout.buffer
    while data := await sock.recv(65536):
        out.write(data)
        out.flush()


async def interactive(args: argparse.Namespace) -> str | None:
    """Type lines, see them echoed; returns an error message, or None when all went well."""
    try:
        sock = await pyos.open_connection(args.host, args.port)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        return f"cannot connect to {args.host}:{args.port}: {reason}"
    print(f"connected to {args.host}:{args.port}; type lines, Ctrl-D to finish",
          file=sys.stderr)
    typist = await pyos.NewTask(keyboard(sock), name="keyboard")
    try:
        await screen(sock)              # until the server hangs up (after our EOF, normally)
    except ConnectionError as exc:
        return f"connection lost: {exc.strerror or exc}"
    finally:
        typing = await pyos.KillTask(typist)   # True: stdin had not ended yet
        await sock.close()
    return "the server closed the connection" if typing else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--conns", type=int, default=0,
                        help="load mode: this many concurrent connections")
    parser.add_argument("--rounds", type=int, default=1000, help="round trips per connection")
    parser.add_argument("--size", type=int, default=100, help="bytes per round trip")
    parser.add_argument("--poller", choices=["epoll", "select"], default=None)
    args = parser.parse_args(argv)
    if args.conns > 0:
        if args.size < 1 or args.rounds < 0:
            parser.error("--size must be at least 1 and --rounds at least 0")
        return load(args)
    try:
        # select, because it also watches a stdin redirected from a file (epoll refuses)
        error = pyos.run(interactive(args), poller=args.poller or "select")
    except KeyboardInterrupt:
        return 130
    if error:
        parser.exit(1, error + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
