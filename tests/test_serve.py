"""serve(): a task per connection, a bounded connection table, accept errors survived,
and a clean stop on cancel or kill.  Real loopback sockets, port 0, both pollers.
"""

from __future__ import annotations

import errno
import gc
import logging
import socket
import warnings

import pytest

import pyos
from pyos import CancelTask, KillTask, NewTask, Sleep, WaitTask
from pyos.serve import serve


def echo_handler(record):
    def handler(client, address):
        try:
            while data := (yield client.recv(1024)):
                yield client.sendall(data)
        finally:
            record.append("handler ended")
    return handler


def client(port, message, record):
    sock = yield pyos.open_connection("127.0.0.1", port)
    with sock:
        yield sock.sendall(message)
        record.append((yield sock.recv(1024)))


def test_serve_runs_a_task_per_connection_and_stops_them_on_cancel(sched) -> None:
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]

    def main():
        server = yield NewTask(serve(listener, echo_handler(record)))
        clients = []
        for i in range(3):
            clients.append((yield NewTask(client(port, b"hi %d" % i, record))))
        for tid in clients:
            yield WaitTask(tid)
        idle = yield NewTask(pyos.open_connection("127.0.0.1", port))  # stays connected
        conn = yield WaitTask(idle)
        for _ in range(5):
            yield Sleep(0)       # the server accepts it, its handler blocks in recv
        yield CancelTask(server)
        try:
            yield WaitTask(server)
        except pyos.TaskCancelled:
            record.append("server cancelled")
        record.append(listener.sock.fileno())
        conn.close()

    sched.new(main())
    sched.mainloop()
    assert sorted(record[:6], key=str) == [b"hi 0", b"hi 1", b"hi 2", *["handler ended"] * 3]
    assert record[6:] == ["handler ended", "server cancelled", -1]


def test_a_full_connection_table_makes_new_clients_wait(sched) -> None:
    """max_conns=1: the second connection is served only once the first has ended."""
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]

    def handler(client, address):
        record.append("start")
        yield client.recv(1024)          # until the client closes
        record.append("end")

    def main():
        server = yield NewTask(serve(listener, handler, max_conns=1))
        first = yield pyos.open_connection("127.0.0.1", port)
        second = yield pyos.open_connection("127.0.0.1", port)
        for _ in range(10):
            yield Sleep(0)
        record.append("both connected")
        first.close()
        for _ in range(10):
            yield Sleep(0)
        second.close()
        for _ in range(10):
            yield Sleep(0)
        yield CancelTask(server)

    sched.new(main())
    sched.mainloop()
    assert record == ["start", "both connected", "end", "start", "end"]


class FlakyListener:
    """A listening socket whose first accepts fail as when the process is out of fds."""

    def __init__(self, sock, failures):
        self._sock, self.failures = sock, failures

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def accept(self):
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self._sock.accept()


def test_accept_errors_are_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    """EMFILE from accept() is logged and retried after a back-off, never fatal."""
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    listener.sock = FlakyListener(listener.sock, failures=2)

    def main():
        server = yield NewTask(serve(listener, echo_handler(record)))
        yield client(port, b"still here", record)
        yield CancelTask(server)

    with caplog.at_level(logging.WARNING, logger="pyos"):
        pyos.run(main())
    assert record[0] == b"still here"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages          # once per spell of failures, not per retry
    assert "Too many open files" in messages[0] and "accepting again" in messages[1]


def test_killing_the_server_kills_its_handlers(sched) -> None:
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]

    def main():
        server = yield NewTask(serve(listener, echo_handler(record)))
        conn = yield pyos.open_connection("127.0.0.1", port)
        for _ in range(5):
            yield Sleep(0)
        yield KillTask(server)
        record.append(len(sched.tasks()))
        conn.close()

    sched.new(main())
    sched.mainloop()
    assert record == ["handler ended", 1]


def test_a_failing_handler_harms_no_other_connection(caplog) -> None:
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    calls = []

    async def handler(client, address):
        calls.append(address)
        if len(calls) == 1:
            raise ValueError("first connection's bug")
        data = await client.recv(1024)
        await client.sendall(data.upper())

    def main():
        server = yield NewTask(serve(listener, handler))
        first = yield pyos.open_connection("127.0.0.1", port)
        record.append((yield first.recv(10)))    # closed by the server: b""
        yield client(port, b"second", record)
        yield CancelTask(server)
        first.close()

    with caplog.at_level(logging.ERROR, logger="pyos"):
        pyos.run(main())
    assert record == [b"", b"SECOND"]
    assert len([r for r in caplog.records if "first connection's bug" in str(r.exc_info)]) == 1


def test_max_conns_must_be_positive() -> None:
    listener = pyos.listen("127.0.0.1", 0)

    def main():
        try:
            yield serve(listener, echo_handler([]), max_conns=0)
        except ValueError as exc:
            return str(exc)

    assert "max_conns" in pyos.run(main())
    listener.close()


def test_a_handler_that_ends_before_serve_resumes_frees_its_slot(sched) -> None:
    """A NewTask that ends serve's turn (calls_per_turn) lets the handler run, and end,
    before serve has counted it: its slot must still come free, or max_conns slots leak
    for good.  (With the default budget: a burst of 33 waiting connections or more.)"""
    sched.calls_per_turn = 2
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    burst = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]

    served = []

    def handler(client, address):
        served.append(address)
        if len(served) > len(burst):     # holds its slot until the client hangs up
            record.append("holding")
            yield client.recv(10)
        # the burst's end in their first run: the server hangs up at once

    def main():
        server = yield NewTask(serve(listener, handler, max_conns=3))
        yield Sleep(0.2)                 # the burst is served
        conns = []
        for _ in range(3):               # three slots: all three are served at once
            conns.append((yield pyos.open_connection("127.0.0.1", port)))
        yield Sleep(0.2)
        record.append("checked")
        for conn in conns:
            conn.close()
        yield CancelTask(server)

    sched.new(main())
    sched.mainloop()
    for peer in burst:
        peer.close()
    assert record[:4] == ["holding"] * 3 + ["checked"]


def test_killing_the_server_closes_the_sockets_of_handlers_that_never_ran(sched) -> None:
    """Handlers killed before their first run close their sockets too (through pyos, not
    left to the garbage collector) and free their slots."""
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]
    peers = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]

    def handler(client, address):
        record.append("started")
        yield client.recv(10)

    def main():
        server = yield NewTask(serve(listener, handler))
        while len(sched.tasks()) < 5:    # serve has accepted all three and made their tasks
            yield Sleep(0)
        yield KillTask(server)           # ... which have not run yet: they are killed too
        record.append(len(sched.tasks()))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        sched.new(main())
        sched.mainloop()
        gc.collect()
    for peer in peers:
        with peer:
            peer.settimeout(2)
            record.append(peer.recv(10))   # b"": the server closed its end
    assert record == [1, b"", b"", b""]
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_a_second_cancel_while_stopping_still_waits_for_the_handlers(sched) -> None:
    """serve() cancels its handlers and waits for them; a second cancel arriving while it
    waits does not cut that short: it ends only once every handler has ended."""
    record: list[object] = []
    listener = pyos.listen("127.0.0.1", 0)
    port = listener.getsockname()[1]

    def slow_to_stop(client, address):
        try:
            yield client.recv(1024)
        except pyos.Cancelled:
            yield Sleep(0.05)            # clean-up that blocks
            record.append("handler cleaned up")
            raise

    def main():
        server = yield NewTask(serve(listener, slow_to_stop))
        conn = yield pyos.open_connection("127.0.0.1", port)
        for _ in range(5):
            yield Sleep(0)
        yield CancelTask(server)
        yield Sleep(0)                   # the server is now waiting for its handler
        yield CancelTask(server)
        try:
            yield WaitTask(server)
        except pyos.TaskCancelled:
            record.append("server ended")
        conn.close()

    sched.new(main())
    sched.mainloop()
    assert record == ["handler cleaned up", "server ended"]
