"""Chat clients for tests/test_chat_server.py: plain blocking sockets read a line at a time.

Plain sockets, not pyos ones, so a pyos bug cannot hide itself.  Every read has a
deadline and every loop a bound: a server that goes quiet fails the test, never hangs it.
"""

from __future__ import annotations

import re
import socket
import time

from helpers import Server

WELCOME = re.compile(r"\* welcome, (\S+): \d+ here now; /nick NAME, /who, /quit")


class Peer:
    """One client: ``say`` lines, read the ``line``s that come back (None at EOF)."""

    def __init__(self, server: Server, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:   # before connect, so the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", server.port))
        self.buf = b""
        match = WELCOME.fullmatch(self.line() or "")
        assert match, "no welcome line"
        self.nick = match.group(1)

    def say(self, *lines: str) -> None:
        self.sock.sendall("".join(f"{line}\n" for line in lines).encode())

    def line(self, limit: float = 5.0) -> str | None:
        """The next line, without its newline; None at end of stream."""
        deadline = time.monotonic() + limit
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, f"no whole line within {limit} s (have {self.buf[:60]!r})"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                rest, self.buf = self.buf, b""
                return rest.decode() if rest else None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def expect(self, *lines: str, limit: float = 5.0) -> None:
        """The next lines are exactly these."""
        for expected in lines:
            got = self.line(limit)
            assert got == expected, f"{self.nick} read {got!r}, not {expected!r}"

    def until_eof(self, limit: float = 5.0, most: int = 100_000) -> list[str]:
        """Every line left, up to end of stream (which must come within limit seconds)."""
        deadline, lines = time.monotonic() + limit, []
        for _ in range(most):
            line = self.line(max(0.01, deadline - time.monotonic()))
            if line is None:
                return lines
            lines.append(line)
        raise AssertionError(f"no end of stream after {most} lines")

    def quiet(self, wait: float = 0.2) -> bool:
        """Nothing arrives within wait seconds."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(1 << 16)
        except TimeoutError:
            return not self.buf
        self.buf += chunk
        return False

    def close(self) -> None:
        self.sock.close()


def join(server: Server, n: int) -> list[Peer]:
    """n clients, one after the other; each earlier one has read every later one's join."""
    peers: list[Peer] = []
    for _ in range(n):
        peer = Peer(server)
        for other in peers:
            other.expect(f"* {peer.nick} has joined")
        peers.append(peer)
    return peers
