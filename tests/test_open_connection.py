"""pyos.open_connection: each resolved address in turn, the last error, numeric hosts.

Runs on both pollers (the ``sched`` fixture) against listeners on 127.0.0.1; where the
test needs several addresses it supplies them, so it means the same on every host.
Resolution runs in a worker thread: a slow name server stalls only the task that asked.
"""

from __future__ import annotations

import socket
import threading
import types

from helpers import run_watched

import pyos


def test_open_connection_refused(sched):
    """A port with nothing listening: ConnectionRefusedError in the task."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    record = []

    def client():
        try:
            yield pyos.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            record.append("refused")

    run_watched(sched, client())
    assert record == ["refused"]


def test_open_connection_to_localhost_reaches_an_ipv4_only_listener(sched, monkeypatch):
    """localhost resolving to ::1 first: that refusal must not stop the 127.0.0.1 try.

    Hosts without ::1 in /etc/hosts get it added in front, so the test means the same
    everywhere; name resolution itself is still the real getaddrinfo.
    """
    real_getaddrinfo, tried = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        infos = real_getaddrinfo(host, port, *args, **kwargs)
        if not any(info[0] == socket.AF_INET6 for info in infos):
            infos.insert(0, (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)))
        tried.extend(info[4][0] for info in infos)
        return infos

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    listener = pyos.listen("127.0.0.1", 0)
    port, record = listener.getsockname()[1], []

    def server():
        with listener:
            conn, _ = yield listener.accept()
            with conn:
                record.append((yield conn.readline()))

    def client():
        with (yield pyos.open_connection("localhost", port)) as sock:
            yield sock.write(b"hello over localhost\n")

    run_watched(sched, server(), client())
    assert record == [b"hello over localhost\n"]
    assert "::1" in tried and "127.0.0.1" in tried


def test_open_connection_tries_each_address_and_raises_the_last_error(sched, monkeypatch):
    """An address whose family does not fit raises gaierror; a closed port refuses."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = (socket.AF_INET, socket.SOCK_STREAM, 0, closed.getsockname())
    closed.close()
    unfit = (socket.AF_INET, socket.SOCK_STREAM, 0, ("::1", 1))
    record = []

    def attempt(addresses):
        @types.coroutine
        def resolve(host, port):
            yield from ()
            return addresses

        monkeypatch.setattr(pyos.sockets, "_resolve", resolve)
        try:
            yield pyos.open_connection("example.invalid", 1)
        except OSError as exc:
            record.append(type(exc).__name__)

    def client():
        yield attempt([unfit, refused])
        yield attempt([refused, unfit])

    run_watched(sched, client())
    assert record == ["ConnectionRefusedError", "gaierror"]


def test_open_connection_to_a_numeric_address_skips_resolution(sched, monkeypatch):
    def no_resolving(host, port):
        raise AssertionError("a numeric address was resolved")

    monkeypatch.setattr(pyos.sockets, "_resolve", no_resolving)
    listener = pyos.listen("127.0.0.1", 0)
    record = []

    def server():
        with listener:
            conn, _ = yield listener.accept()
            conn.close()
            record.append("accepted")

    def client():
        (yield pyos.open_connection(*listener.getsockname())).close()

    run_watched(sched, server(), client())
    assert record == ["accepted"]


def slow_resolver(monkeypatch):
    """Make getaddrinfo block, in whatever thread calls it, until the event is set."""
    release, callers = threading.Event(), []

    def getaddrinfo(host, port, *args, **kwargs):
        callers.append(threading.current_thread() is threading.main_thread())
        release.wait(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return release, callers


def test_name_resolution_runs_in_a_thread_while_other_tasks_run(sched, monkeypatch):
    release, callers = slow_resolver(monkeypatch)
    listener = pyos.listen("127.0.0.1", 0)
    port, record = listener.getsockname()[1], []

    def server():
        with listener:
            conn, _ = yield listener.accept()
            conn.close()
            record.append("accepted")

    def client():
        (yield pyos.open_connection("db.example", port)).close()

    def watcher(tid):
        for _ in range(10_000):           # until the resolver is called
            if callers:
                break
            yield pyos.Sleep(0.001)
        record.extend(i.state for i in (yield pyos.Ps()) if i.tid == tid)
        release.set()

    tid = sched.new(client())
    run_watched(sched, server(), watcher(tid))
    assert record == ["waiting for thread getaddrinfo()", "accepted"]
    assert callers == [False]


def test_a_timeout_does_not_wait_for_a_slow_resolver(sched, monkeypatch):
    release, _callers = slow_resolver(monkeypatch)
    record = []

    def client():
        try:
            yield pyos.timeout_after(0.02, pyos.open_connection("db.example", 1))
        except pyos.TaskTimeout:
            record.append(("timed out", release.is_set()))

    run_watched(sched, client())
    release.set()                          # the abandoned lookup ends; close joins it
    assert record == [("timed out", False)]
