"""A client for the monitor console, with line editing and history (the readline module).

    python -m pyos.monitor [ADDRESS] [-c COMMAND ...]

ADDRESS is ``unix:PATH``, ``tcp:HOST:PORT``, a path, or the pid of a program that
listens on its default socket; with none, the one program of yours that does.  With
``-c`` it runs those commands, prints their answers and exits (for scripts); otherwise
it reads commands from the terminal until ``quit`` or Ctrl-D.  A CLI, so it writes to
stdout; ``nc -U PATH`` speaks the same protocol.
"""

from __future__ import annotations

import argparse
import socket
import sys

from .address import Address, connect, find_default, parse_address
from .server import PROMPT

__all__ = ["main"]


def _resolve(spec: str | None) -> Address:
    """The address to connect to; SystemExit with advice when it cannot be told."""
    if spec is not None:
        return parse_address(spec, client=True)
    found = find_default()
    if len(found) == 1:
        return Address("unix", path=found[0])
    if not found:
        raise SystemExit("no pyos monitor of yours is listening on a default socket: "
                         "give its address (it is logged when the program starts)")
    raise SystemExit("several pyos monitors are listening; choose one:\n  "
                     + "\n  ".join(found))


class Connection:
    """The line protocol: send a line, read the answer up to the next prompt."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def answer(self) -> str | None:
        """The text before the next prompt; None if the monitor closed the connection."""
        while not self.buffer.endswith(PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                text, self.buffer = self.buffer, b""
                return text.decode("utf-8", "replace") if text else None
            self.buffer += chunk
        text, self.buffer = self.buffer[:-len(PROMPT)], b""
        return text.decode("utf-8", "replace")

    def ask(self, line: str) -> str | None:
        self.sock.sendall(line.encode() + b"\n")
        return self.answer()


def _interactive(conn: Connection) -> int:
    if sys.stdin.isatty():
        try:
            import readline  # noqa: F401  (input() then edits lines and keeps history)
        except ImportError:
            pass
    prompt = PROMPT.decode() if sys.stdin.isatty() else ""
    while True:
        try:
            line = input(prompt)
        except EOFError:
            line = "quit"
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            line = "quit"
        text = conn.ask(line)
        if text is None:
            sys.stdout.write("(the monitor closed the connection)\n")
            return 0 if line.strip().lower() == "quit" else 1
        sys.stdout.write(text)
        sys.stdout.flush()
        if line.strip().lower() == "quit":
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyos.monitor",
                                     description="A client for the pyos monitor console.")
    parser.add_argument("address", nargs="?",
                        help="unix:PATH, tcp:HOST:PORT, a path or a pid (default: the one "
                             "default socket of yours)")
    parser.add_argument("-c", dest="commands", action="append", metavar="COMMAND",
                        help="run COMMAND and exit (may be repeated)")
    args = parser.parse_args(argv)
    try:
        address = _resolve(args.address)
        sock = connect(address, timeout=None)
    except (ValueError, OSError) as exc:
        parser.exit(2, f"cannot reach the monitor: {exc}\n")
    with sock:
        conn = Connection(sock)
        greeting = conn.answer()
        if greeting is None:
            parser.exit(1, f"{address}: closed without a word\n")
        if not args.commands:
            sys.stdout.write(greeting)
            return _interactive(conn)
        for command in args.commands:
            text = conn.ask(command)
            if text is None:
                return 1
            sys.stdout.write(text)
        conn.ask("quit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
