"""The generator floor: the leanest kernel that runs each connection as a generator task.

Why: epoll-callbacks is a pure-Python loop with no tasks at all; pyos runs each connection
as a generator whose socket operations are ``yield from`` sub-coroutines.  This keeps
pyos's task shape (the handler is the demo's hot path, word for word) and nothing else:
pyos minus this is its kernel's bookkeeping, this minus epoll-callbacks is the price of
generators.  Left out: timers, task ids, CPU accounting, fairness (a task runs until it
must wait), fault isolation beyond closing the connection whose task ended or failed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import types
from collections.abc import Generator
from typing import Any

from base import CHUNK, announce, arg_parser, listener

IN, OUT = select.EPOLLIN, select.EPOLLOUT
Op = Generator[tuple[int, int], None, Any]  # a task; it yields (fd, events to wait for)


class Conn:
    """A non-blocking socket whose recv and sendall are generator sub-operations."""

    __slots__ = ("_recv", "_send", "fd", "more", "rd", "sock", "wr")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock, self.fd, self.more = sock, sock.fileno(), True
        self.rd, self.wr = (self.fd, IN), (self.fd, OUT)  # wait tokens, made once
        self._recv, self._send = sock.recv, sock.send

    @types.coroutine
    def recv(self, size: int) -> Op:
        if not self.more:  # the last read came up short: the next would most likely fail
            yield self.rd
        while True:
            try:
                data = self._recv(size)
                self.more = len(data) == size
                return data
            except BlockingIOError:
                yield self.rd

    @types.coroutine
    def sendall(self, data: bytes) -> Op:
        try:
            sent = self._send(data)  # try first: usually it all fits at once
        except BlockingIOError:
            sent = 0
        while sent < len(data):
            yield self.wr
            with contextlib.suppress(BlockingIOError):
                sent += self._send(memoryview(data)[sent:])


def handler(conn: Conn) -> Op:
    while data := (yield from conn.recv(CHUNK)):
        yield from conn.sendall(data)


def main() -> None:
    lsock = listener(arg_parser(__doc__.split("\n")[0]).parse_args())
    lsock.setblocking(False)
    ep, lfd = select.epoll(), lsock.fileno()
    masks: dict[int, int] = {}  # fd -> the events it is registered for (level-triggered)
    waiting: dict[int, Op] = {}  # fd -> the task parked on it (one task per descriptor)
    owners: dict[Op, Conn] = {}  # task -> the connection to close when it ends
    ready: list[Op] = []

    def acceptor() -> Op:
        while True:
            try:
                sock, _address = lsock.accept()
            except BlockingIOError:
                yield lfd, IN
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock)
            owners[task := handler(conn)] = conn
            ready.append(task)

    ready.append(acceptor())
    announce(lsock)
    poll, register, modify = ep.poll, ep.register, ep.modify
    while True:
        for fd, _events in poll(0 if ready else -1):
            if (task := waiting.pop(fd, None)) is not None:
                ready.append(task)
        run, ready = ready, []
        for task in run:
            try:
                fd, mask = task.send(None)
            except Exception:  # StopIteration (the client closed) or a socket error
                if (conn := owners.pop(task, None)) is None:
                    raise  # the acceptor failed: nothing would accept again
                if masks.pop(conn.fd, None) is not None:  # forget it: the number is reused
                    ep.unregister(conn.fd)
                conn.sock.close()
                continue
            waiting[fd] = task
            if (old := masks.get(fd)) != mask:  # registered once; changed when IN <-> OUT
                (register if old is None else modify)(fd, mask)
                masks[fd] = mask


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
