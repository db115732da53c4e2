"""Sockets for tasks: blocking operations as sub-coroutines over ReadWait and WriteWait.

``data = yield sock.recv(4096)`` (or ``await sock.recv(4096)``) reads like blocking code,
but the socket underneath is non-blocking: when the OS says "would block", the operation
yields a ``ReadWait``/``WriteWait`` and the kernel runs other tasks until the descriptor
is ready.  The kernel never sees a socket; this module only uses system calls, and
tells the running kernel (``runtime.current_kernel()``) when a socket is about to close.

Each operation is a generator marked with ``types.coroutine``, which makes the same
object usable with ``yield`` (Beazley's trampoline), ``yield from`` and ``await``.
"""

from __future__ import annotations

import errno
import os
import socket
import types
from collections.abc import Generator
from typing import Any

from .runtime import current_kernel
from .syscalls import NotifyClosed, ReadWait, SystemCall, WriteWait

__all__ = ["Socket", "listen", "open_connection"]

Op = Generator[Any, Any, Any]


class Socket:
    """A non-blocking socket whose blocking methods are sub-coroutines."""

    #: After this many operations in a row that find the socket ready, the next one
    #: gives up the CPU first: one busy stream must not starve every other task.
    SWITCH_EVERY = 16

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._wait_read = ReadWait(sock)     # made once: waiting allocates nothing
        self._wait_write = WriteWait(sock)
        # After a recv that came up short the next one will most likely find nothing, so
        # it waits first rather than paying for a failed call (a request/response pattern).
        self._more = True
        self._streak = 0  # operations in a row that did not have to wait

    def __repr__(self) -> str:
        return f"<pyos.Socket fd={self.sock.fileno()}>"

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    @types.coroutine
    def accept(self) -> Op:
        """Wait for a connection; return (Socket, address)."""
        while True:
            try:
                conn, address = self.sock.accept()
            except BlockingIOError:
                yield self._wait_read
            else:
                return Socket(conn), address

    @types.coroutine
    def recv(self, size: int) -> Op:
        """Receive up to size bytes; b"" means the peer closed its side."""
        if not self._more:
            self._streak = 0
            yield self._wait_read
        elif self._streak >= self.SWITCH_EVERY:
            self._streak = 0
            yield                     # let the others run, then read on
        while True:
            try:
                data = self.sock.recv(size)
            except BlockingIOError:
                self._streak = 0
                yield self._wait_read
            else:
                self._streak += 1
                self._more = len(data) == size
                return data

    @types.coroutine
    def send(self, data: bytes) -> Op:
        """Send some of data, waiting until at least one byte can go; return the count."""
        if self._streak >= self.SWITCH_EVERY:
            self._streak = 0
            yield
        while True:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                self._streak = 0
                yield self._wait_write
            else:
                self._streak += 1
                return sent

    @types.coroutine
    def sendall(self, data: bytes | bytearray | memoryview) -> Op:
        """Send all of data, waiting whenever the socket's buffer is full."""
        try:
            sent = self.sock.send(data)       # try first: usually it all fits at once
        except BlockingIOError:
            sent = 0
        if sent == len(data) and isinstance(data, (bytes, bytearray)):  # len counts bytes
            self._streak += 1
            if self._streak >= self.SWITCH_EVERY:
                self._streak = 0
                yield                 # it all fit, again and again: let the others run
            return
        self._streak = 0
        with memoryview(data) as view, view.cast("B") as octets:
            while sent < len(octets):
                yield self._wait_write
                try:
                    sent += self.sock.send(octets[sent:])
                except BlockingIOError:
                    pass

    @types.coroutine
    def connect(self, address: Any) -> Op:
        """Connect to address, waiting for the handshake to finish."""
        try:
            self.sock.connect(address)
        except BlockingIOError:
            yield self._wait_write
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {address!r}: {os.strerror(err)}") from None

    def close(self) -> SystemCall:
        """Close the socket now, and tell the kernel running this thread, if any.

        The kernel hears of it *before* the descriptor is closed: then it can still take
        the descriptor out of epoll, which is impossible afterwards when the file stays
        open elsewhere (a ``dup``, a forked child) and would fire forever.  Tasks still
        waiting on this socket fail with EBADF at once.  The returned call does the same
        again, harmlessly, so ``yield sock.close()`` works as it always has.
        """
        fd = self.sock.fileno()
        if fd >= 0 and (kernel := current_kernel()) is not None:
            kernel.notify_closed(fd)
        self.sock.close()
        self._more = True  # a later recv must fail on the socket, not wait on a stale fd
        return NotifyClosed(fd)

    def shutdown(self, how: int = socket.SHUT_WR) -> None:
        """Half-close: by default, tell the peer we will send no more (it reads EOF)."""
        try:
            self.sock.shutdown(how)
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:  # the peer is already gone: nothing to say
                raise

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def getpeername(self) -> Any:
        return self.sock.getpeername()

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        self.sock.setsockopt(level, option, value)


def listen(host: str = "127.0.0.1", port: int = 0, backlog: int = 1024) -> Socket:
    """A listening TCP socket on (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return Socket(sock)


@types.coroutine
def open_connection(host: str, port: int) -> Op:
    """Connect a TCP socket to (host, port); returns a Socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = Socket(socket.socket(family, socket.SOCK_STREAM))
    try:
        yield from sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
