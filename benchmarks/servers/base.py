"""What every peer echo server shares: its command line, its listener, its greeting.

Why: the runner starts every server the same way (``--port 0 -q``) and reads the port
from the same line the pyos demo prints, ``echo server listening on HOST:PORT``.  Every
peer listens on a socket made here, with the backlog pyos uses, so no server gets a
different accept queue.  Each peer raises its own descriptor limit, as the pyos demo does
(and the runner raises its own, which every server inherits).
"""

from __future__ import annotations

import argparse
import resource
import socket

BACKLOG = 1024   # what pyos.listen() uses
CHUNK = 65536    # what demos/echo_server.py reads at a time


def arg_parser(description: str) -> argparse.ArgumentParser:
    """The demo's options: --host, --port (0 picks a free one), -q (accepted, ignored)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true", help="peers never log")
    return parser


def raise_nofile() -> None:
    """Soft descriptor limit up to the hard one: 10,000 clients need 10,000 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listener(args: argparse.Namespace) -> socket.socket:
    """A bound, listening TCP socket, configured as pyos.listen() configures its own."""
    raise_nofile()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(BACKLOG)
    return sock


def announce(sock: socket.socket) -> None:
    """Tell the runner where we listen, in the words of demos/echo_server.py."""
    host, port = sock.getsockname()[:2]
    print(f"echo server listening on {host}:{port}", flush=True)
