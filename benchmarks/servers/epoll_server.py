"""The pure-Python ceiling: a bare callback loop on select.epoll, no framework at all.

Why: every other server here adds layers (tasks, transports, futures) over exactly this
loop: level-triggered epoll, non-blocking sockets, a dict of fd -> callback.  Its round
trips per second are the most any pure-Python event loop can hope for on this machine.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable

from base import CHUNK, announce, arg_parser, listener

IN, OUT = select.EPOLLIN, select.EPOLLOUT


def main() -> None:
    args = arg_parser(__doc__.split("\n")[0]).parse_args()
    lsock = listener(args)
    lsock.setblocking(False)
    ep = select.epoll()
    callbacks: dict[int, Callable[[int], None]] = {}

    def connection(conn: socket.socket) -> Callable[[int], None]:
        """The callback for one client: echo what arrives; stop reading while blocked."""
        fd, recv, send = conn.fileno(), conn.recv, conn.send
        unsent = b""

        def close() -> None:
            ep.unregister(fd)
            del callbacks[fd]
            conn.close()

        def on_event(events: int) -> None:
            nonlocal unsent
            try:
                if unsent:  # only OUT is registered while unsent is not empty
                    unsent = unsent[send(unsent):]
                    if not unsent:
                        ep.modify(fd, IN)
                    return
                data = recv(CHUNK)
                if not data:
                    close()
                    return
                try:
                    sent = send(data)
                except BlockingIOError:
                    sent = 0
                if sent < len(data):
                    unsent = data[sent:]
                    ep.modify(fd, OUT)
            except BlockingIOError:
                pass
            except ConnectionError:
                close()

        return on_event

    def on_accept(_events: int) -> None:
        while True:
            try:
                conn, _address = lsock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            callbacks[conn.fileno()] = connection(conn)
            ep.register(conn.fileno(), IN)

    callbacks[lsock.fileno()] = on_accept
    ep.register(lsock.fileno(), IN)
    announce(lsock)
    poll = ep.poll
    while True:
        for fd, events in poll():
            callbacks[fd](events)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
