"""Sockets for tasks: blocking operations as sub-coroutines over ReadWait and WriteWait.

``data = yield sock.recv(4096)`` (or ``await sock.recv(4096)``) reads like blocking code,
but the socket underneath is non-blocking: when the OS says "would block", the operation
yields a ``ReadWait``/``WriteWait`` and the kernel runs other tasks until the descriptor
is ready.  The kernel never sees a socket; this module only uses system calls, and
tells the running kernel (``runtime.current_kernel()``) when a socket is about to close.

Each operation is a generator marked with ``types.coroutine``, which makes the same
object usable with ``yield`` (Beazley's trampoline), ``yield from`` and ``await``.
A Socket is also a line stream (``readline``, ``readuntil``, ... from streams.py):
``recv`` returns what a stream read left in the buffer before it asks the OS again.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import types
from collections.abc import Generator
from typing import Any

from .runtime import current_kernel
from .streams import BufferedStream
from .syscalls import NotifyClosed, ReadWait, SystemCall, WriteWait
from .threads import run_in_thread

__all__ = ["Socket", "listen", "open_connection"]

Op = Generator[Any, Any, Any]


class Socket(BufferedStream):
    """A non-blocking socket whose blocking methods are sub-coroutines; a line stream too."""

    #: After this many operations in a row that find the socket ready, the next one
    #: gives up the CPU first: one busy stream must not starve every other task.
    SWITCH_EVERY = 16

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
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
        """Receive up to size bytes; b"" means the peer closed its side.

        Bytes a stream read left in the buffer come first.  With the buffer empty (always,
        for a socket never read by lines) that costs this hot path one attribute test.
        """
        if self._rbuf:
            return self._take_buffered(size)
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
    def _read_some(self, size: int) -> Op:
        """recv without the buffer: how the stream layer refills it (see streams.py).

        The same steps as recv's, which inlines them rather than calling this, to keep
        its hot path one generator frame deep.
        """
        if not self._more:
            self._streak = 0
            yield self._wait_read
        elif self._streak >= self.SWITCH_EVERY:
            self._streak = 0
            yield
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
        # (len() counts bytes only for these; bytes is tested first: it is the hot path)
        if sent == len(data) and (data.__class__ is bytes or isinstance(data, bytearray)):
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

    _write_all = sendall   # the stream layer's write primitive: write() is sendall()

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


def listen(host: str = "127.0.0.1", port: int = 0, backlog: int = 1024,
           reuse_port: bool = False) -> Socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    reuse_port sets SO_REUSEPORT, so that other sockets (of this user) may listen on the
    same port and the kernel spreads connections over them: how ``run_workers`` and
    several servers started by hand share one port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return Socket(sock)


@types.coroutine
def open_connection(host: str, port: int) -> Op:
    """Connect a TCP socket to (host, port), trying each of its addresses; return a Socket.

    A name may resolve to several addresses (``localhost``: ::1 and 127.0.0.1); each is
    tried in turn, as a server may listen on only one of them.  If none connects, the last
    address's error is raised (ConnectionRefusedError when every one refused).
    """
    addresses = _numeric(host, port)
    if addresses is None:
        addresses = yield from _resolve(host, port)
    error: OSError | None = None
    for family, kind, proto, address in addresses:
        try:
            sock = Socket(socket.socket(family, kind, proto))
        except OSError as exc:     # e.g. no IPv6 on this host: try the next address
            error = exc
            continue
        try:
            yield from sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error if error is not None else OSError(f"no address for {host!r}")


Address = tuple[int, int, int, Any]  # family, socket type, protocol, address for connect


def _numeric(host: str, port: int) -> list[Address] | None:
    """The one address of a numeric host, which needs no resolving; None for a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, socket.SOCK_STREAM, 0, (host, port))]


@types.coroutine
def _resolve(host: str, port: int) -> Op:
    """The addresses of (host, port), in getaddrinfo's order of preference.

    getaddrinfo blocks (for seconds, when a name server is slow), so it runs in a worker
    thread.  It holds nothing its caller must wait for, so a cancel or a timeout leaves
    it to finish alone rather than waiting for it.
    """
    infos = yield run_in_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM,
                                abandon_on_cancel=True)
    return [(family, kind, proto, address) for family, kind, proto, _, address in infos]
