"""pyos's echo server with a deadline on every recv: what a server's idle timeout costs.

    python benchmarks/servers/pyos_timeout_server.py [--timeout 60] [--port 0] [-q]

Why: a real server does not wait forever for a client that went quiet, so each read runs
under ``timeout_after``.  The deadline (60 s) never fires while the client keeps
talking, which is the common case and the one measured: the cost of setting and
clearing a deadline per message.  Everything else is demos/echo_server.py's (pyos.listen,
pyos.serve, the same handler, the same ``yield from`` on the hot path), so its round
trips against the demo's, measured in the same passes, price the timeout alone; the
asyncio streams server with ``--timeout`` is the comparison.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # pyos from this checkout

from base import CHUNK, announce, arg_parser, raise_nofile

import pyos


def echo(client: pyos.Socket, timeout: float) -> Generator[Any, Any, None]:
    """The demo's handler, each recv under a deadline; a client idle that long is dropped.

    ``yield from`` rather than ``yield``, as in the demo: the handler delegates to
    timeout_after's generator in Python instead of the kernel's trampoline calling it.
    """
    with contextlib.suppress(ConnectionError, pyos.TaskTimeout):
        while data := (yield from pyos.timeout_after(timeout, client.recv(CHUNK))):
            yield from client.sendall(data)
        client.shutdown(socket.SHUT_WR)


def main() -> None:
    parser = arg_parser(__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a client may stay silent (never reached here)")
    args: argparse.Namespace = parser.parse_args()
    for signum in (signal.SIGINT, signal.SIGTERM):  # unwind, as the demo does, even if
        signal.signal(signum, signal.default_int_handler)  # started with SIGINT ignored
    raise_nofile()
    listener = pyos.listen(args.host, args.port)
    announce(listener.sock)

    def handler(client: pyos.Socket, _address: Any) -> Generator[Any, Any, None]:
        return echo(client, args.timeout)

    sched = pyos.Scheduler()
    sched.new(pyos.serve(listener, handler, max_conns=10_000), name="listener")
    try:
        sched.mainloop()
    finally:
        sched.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
