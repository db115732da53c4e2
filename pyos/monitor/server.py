"""The monitor's server: a thread that accepts clients, and a thread per client.

Threads, not tasks: the console exists for when the kernel cannot answer (a task hogs
the CPU, the kernel is stuck), so nothing it does may wait for the kernel.  The accept
thread waits on the listening socket and on a pipe that ``close()`` writes; a client's
thread reads lines, runs each complete one (commands.py) and writes the answer and a
``pyos> `` prompt.  A line is run only once its newline has arrived, so a line cut off
by a client that vanished is never run; a line longer than MAX_LINE is refused whole;
bytes that are not UTF-8 are just an unknown command.  Up to MAX_CLIENTS at once.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import threading
from typing import Any

from .address import Address, listen, parse_address
from .commands import Context, execute

__all__ = ["MAX_CLIENTS", "MAX_LINE", "PROMPT", "Monitor"]

log = logging.getLogger("pyos")

PROMPT = b"pyos> "
MAX_LINE = 4096
MAX_CLIENTS = 16
#: A client that takes longer than this to take an answer is dropped.
SEND_TIMEOUT = 10.0


class Monitor:
    """A console on sched, listening at address (see address.py) until ``close()``."""

    def __init__(self, sched: Any, address: bool | str) -> None:
        self.address: Address = parse_address(address)   # ValueError: not loopback, ...
        self._listener = listen(self.address)
        try:
            if self.address.kind == "tcp":                 # port 0: the one it got
                self.address = Address("tcp", host=self.address.host,
                                       port=self._listener.getsockname()[1])
                self._inode: int | None = None
            else:
                self._inode = os.stat(self.address.path).st_ino
        except BaseException:
            self._listener.close()
            raise
        self._sched = sched
        self._closing = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._thread = threading.Thread(target=self._accept, name="pyos-monitor", daemon=True)
        self._thread.start()
        how = (f"python -m pyos.monitor {self.address}" + (
            f"  or  nc -U {self.address.path}" if self.address.kind == "unix" else ""))
        # WARNING, so it shows whatever the logging set-up: a console into this process
        # is open, and whoever runs it must know where.
        log.warning("pyos monitor listening on %s (%s)", self.address, how)

    def __repr__(self) -> str:
        return f"<Monitor {self.address}>"

    def clients(self) -> int:
        """How many clients are connected now."""
        with self._lock:
            return len(self._clients)

    def close(self) -> None:
        """Stop accepting, end every client's connection, remove the Unix socket."""
        if self._closing.is_set():
            return
        self._closing.set()
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._lock:
            clients = dict(self._clients)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)   # wakes its thread's recv
            except OSError:
                pass
        for thread in clients.values():
            thread.join(5)
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._inode is not None:
            try:       # only our own socket: not one another process has put there since
                if os.stat(self.address.path).st_ino == self._inode:
                    os.unlink(self.address.path)
            except OSError:
                pass

    # -- The accept thread ---------------------------------------------------------------
    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener and not self._closing.is_set():
                        self._admit()

    def _admit(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return     # gone before we took it, or out of descriptors: try the next one
        with self._lock:
            full = len(self._clients) >= MAX_CLIENTS
            if not full:
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                          name=f"pyos-monitor-client-{conn.fileno()}")
                self._clients[conn] = thread
        if full:
            try:
                conn.settimeout(1.0)
                conn.sendall(f"too many monitor clients (at most {MAX_CLIENTS})\n".encode())
            except OSError:
                pass
            conn.close()
            return
        thread.start()

    # -- A client's thread ---------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        try:
            Session(self, conn).run()
        except OSError:
            pass                           # the client went away: nothing to tell anyone
        except Exception:
            log.exception("monitor client failed")
        finally:
            with self._lock:
                self._clients.pop(conn, None)
            conn.close()


class Session:
    """One client: reads lines, answers each, until it quits, vanishes or the monitor ends."""

    def __init__(self, monitor: Monitor, conn: socket.socket) -> None:
        self.conn = conn
        self.context = Context(monitor._sched, monitor.address.kind == "tcp",
                               monitor.clients, monitor._closing)
        self.closing = monitor._closing

    def run(self) -> None:
        self.conn.settimeout(SEND_TIMEOUT)
        tcp = " (TCP: reading commands only)" if self.context.tcp else ""
        self.send(f"pyos monitor, pid {os.getpid()}{tcp}: type help")
        buffer, discarding = b"", False
        while not self.closing.is_set():
            try:
                chunk = self.conn.recv(4096)
            except TimeoutError:
                continue                   # an idle client: fine
            if not chunk:
                return                     # gone; a line without its newline is not run
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if discarding:             # the rest of a line that was too long
                    discarding = False
                    continue
                if len(line) > MAX_LINE:
                    self.send(f"line too long (over {MAX_LINE} bytes): ignored")
                    continue
                answer, quit = execute(self.context, line.decode("utf-8", "replace"))
                if quit:
                    self.conn.sendall(answer.encode() + b"\n")   # no prompt: it closes
                    return
                self.send(answer)
            if len(buffer) > MAX_LINE:
                if not discarding:
                    self.send(f"line too long (over {MAX_LINE} bytes): ignored")
                buffer, discarding = b"", True

    def send(self, answer: str) -> None:
        """Write an answer, then the prompt that says the console awaits the next line."""
        text = answer.encode("utf-8", "replace")
        self.conn.sendall(text + b"\n" + PROMPT if text else PROMPT)
