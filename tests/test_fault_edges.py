"""Edge cases a review reproduced as crashes, hangs or leaks; each stays fixed here.

A wait the OS refuses must leave nothing behind; epoll must not keep a dropped socket
open; a failing main task must not go silent; the SIGUSR1 dump must never raise into
the code it interrupts; one generator cannot be two tasks.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import sys

import pytest
from helpers import run

import pyos
from pyos import NewTask, ReadWait, Sleep


def test_refused_wait_leaves_no_waiter_behind(sched, socketpair):
    """ReadWait on a closed descriptor fails in the task; its later sleeps are undisturbed."""
    a, _b = socketpair
    dead = os.dup(a.fileno())
    os.close(dead)
    record = []

    def task():
        try:
            yield ReadWait(dead)
        except (OSError, ValueError) as exc:
            record.append(type(exc).__name__)
        assert len(sched._poller) == 0        # no stale waiter for the audit to find
        for _ in range(3):
            yield Sleep(0.01)                 # each must sleep, not be failed with EBADF
        record.append("slept")

    run(sched, task())
    assert record[-1] == "slept" and len(record) == 2


def test_recv_after_close_fails_at_once(sched, socketpair):
    """A recv on a socket closed after a short read raises OSError instead of waiting."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []

    def task():
        b.send(b"x")
        assert (yield sock.recv(10)) == b"x"  # short read: the next recv would wait first
        yield sock.close()
        try:
            yield sock.recv(10)
        except OSError as exc:
            record.append(exc.errno)
        record.append(len(sched._poller))     # no waiter left on the old descriptor

    run(sched, task())
    assert record[1:] == [0] and record[0] is not None


def test_epoll_does_not_keep_a_dropped_socket_open(sched):
    """A handler that returns without closing its socket: the peer still sees EOF."""
    listener = pyos.listen("127.0.0.1", 0)
    peer = socket.create_connection(listener.getsockname())

    def handler():
        conn, _ = yield listener.accept()
        assert (yield conn.recv(10)) == b"x"  # it waited: registered with the poller

    def sender():
        for _ in range(3):
            yield
        peer.send(b"x")

    try:
        run(sched, handler(), sender())       # the handler returns without closing conn
        gc.collect()
        peer.settimeout(2)
        assert peer.recv(10) == b""
    finally:
        peer.close()
        listener.close()


def test_run_logs_a_failed_main_while_others_still_run(caplog):
    """pyos.run raises main's error at the end, and logs it at once if others carry on."""
    def helper():
        yield Sleep(0.05)

    def main():
        yield NewTask(helper())
        raise ValueError("main broke")

    with caplog.at_level(logging.ERROR, logger="pyos"), pytest.raises(ValueError):
        pyos.run(main())
    assert any("main broke" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_dump_never_raises_into_the_interrupted_code(sched, monkeypatch):
    """With stderr gone, a SIGUSR1 dump is skipped rather than failing a task or the loop."""
    old = signal.getsignal(signal.SIGUSR1)
    record = []

    def busy():
        os.kill(os.getpid(), signal.SIGUSR1)  # taken while this task runs
        yield
        record.append("carried on")

    try:
        sched.dump_on_signal(signal.SIGUSR1)
        monkeypatch.setattr(sys, "stderr", None)
        run(sched, busy())
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert record == ["carried on"]


def test_a_started_generator_cannot_become_a_task():
    """NewTask of a generator another task already drives raises ValueError at the call."""
    def worker():
        yield
        yield

    def main():
        g = worker()
        next(g)
        try:
            yield NewTask(g)
        except ValueError as exc:
            return str(exc)
        return None

    assert "already started" in pyos.run(main())


def test_epoll_refuses_a_regular_file_clearly(tmp_path):
    """epoll cannot watch a regular file: the task gets a ValueError saying so, once."""
    path = tmp_path / "f"
    path.write_bytes(b"data")
    errors = []

    def reader():
        with open(path, "rb") as f:
            try:
                yield ReadWait(f)
            except ValueError as exc:
                errors.append(str(exc))

    sched = pyos.Scheduler(poller="epoll")
    try:
        run(sched, reader(), reader())        # the second is not told a dead task waits
    finally:
        sched.close()
    assert len(errors) == 2 and all("regular files" in e for e in errors)
