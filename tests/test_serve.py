"""serve(): a task per connection, a bounded connection table, accept errors survived,
and a clean stop on cancel or kill.  Real loopback sockets, port 0, both pollers.
"""

from __future__ import annotations

import errno
import logging

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
