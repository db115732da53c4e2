"""Descriptors closed under a waiting task: through the socket layer, behind the kernel's
back (found by the idle audit, which runs at most once per audit_after), and closed
with their number reused.

Every test runs on both backends (the ``sched`` fixture).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from itertools import pairwise

import pytest
from helpers import run

import pyos
from pyos import KillTask, ReadWait, Sleep


@pytest.mark.parametrize("op", ["recv", "sendall"])
def test_close_through_socket_layer_fails_waiter(sched, socketpair, op):
    """yield sock.close() throws EBADF into the task blocked on it; a bystander carries on."""
    a, _ = socketpair
    c, d = socket.socketpair()
    sock, record = pyos.Socket(a), []

    def waiter():
        try:
            yield (sock.recv(10) if op == "recv" else sock.sendall(b"y" * (64 << 20)))
        except OSError as exc:
            record.append(("waiter", exc.errno))

    def bystander():
        yield ReadWait(c)
        record.append(("bystander", c.recv(10)))

    def closer():
        yield
        yield sock.close()
        record.append("closed")
        d.send(b"hi")

    with c, d:
        run(sched, waiter(), bystander(), closer())
    assert record == ["closed", ("waiter", errno.EBADF), ("bystander", b"hi")]
    assert len(sched._poller) == 0


@pytest.mark.parametrize("heartbeat", [False, True])
def test_close_behind_the_kernels_back(sched, socketpair, as_fd, heartbeat):
    """A plain close() under a waiter is found once the kernel idles, even while a timer
    ticks: the waiter gets EBADF within about audit_after."""
    a, _ = socketpair
    record, ticks = [], [0]

    def waiter():
        try:
            yield ReadWait(as_fd(a))
        except OSError as exc:
            record.append((exc.errno, time.perf_counter() - start))

    def closer():
        a.close()
        yield
        while heartbeat and not record and ticks[0] < 60:   # 3 s, unless the waiter is told
            ticks[0] += 1
            yield Sleep(0.05)

    start = time.perf_counter()
    run(sched, waiter(), closer())
    assert [error for error, _ in record] == [errno.EBADF]
    assert record[0][1] < sched.audit_after + 1.0


def test_reused_fd_number_never_wakes_old_waiter(sched, socketpair):
    """Close fd behind the back, give its number to a readable socket: the old waiter gets EBADF."""
    a, _ = socketpair
    fd, record = a.fileno(), []
    x, y = socket.socketpair()

    def waiter():
        try:
            yield ReadWait(fd)
            record.append("woke as readable")
        except OSError as exc:
            record.append(exc.errno)

    def reuser():
        yield
        a.close()
        os.dup2(x.fileno(), fd)   # same number, another socket
        y.send(b"x")              # ... which is readable

    with x, y:
        run(sched, waiter(), reuser())
        os.close(fd)
    assert record == [errno.EBADF]


@pytest.mark.timeout(10)
def test_audit_runs_at_most_once_per_audit_after(sched, socketpair):
    """Timed polls that keep coming back empty (a task sleeping 5 ms again and again while
    another waits to read) audit the descriptors at most once per audit_after, not once
    per poll; and the audit does run while the kernel idles like this."""
    a, _ = socketpair
    sched.audit_after = 0.05
    audits, empty_polls = [], [0]
    real_audit, real_poll = sched._poller.audit, sched._poller.poll

    def counting_audit():
        audits.append(sched._last_audit)    # the clock() reading this audit was made at
        real_audit()

    def counting_poll(timeout):
        woken = real_poll(timeout)
        if timeout and not woken:
            empty_polls[0] += 1
        return woken

    sched._poller.audit, sched._poller.poll = counting_audit, counting_poll

    def reader():
        yield ReadWait(a)

    def ticker(reader_tid):
        for _ in range(40):
            yield Sleep(0.005)
        yield KillTask(reader_tid)

    start = time.perf_counter()
    run(sched, ticker(sched.new(reader())))
    elapsed = time.perf_counter() - start
    assert empty_polls[0] >= 40
    assert 2 <= len(audits) <= 1 + elapsed / sched.audit_after
    assert all(later - earlier >= sched.audit_after for earlier, later in pairwise(audits))


def _fail_closed_waiter_next_to_a_long_sleeper(sched, wait, close) -> list[object]:
    """A task sleeps an hour, another waits (wait()) on a socket that close() closes.
    Returns what the waiter saw.  A guard task, woken by the waiter or after 1 s by a
    thread (not by a timer: a timer would make the kernel poll, and audit, sooner), ends
    the sleeper so that the test always ends."""
    sched.audit_after = 0.05
    g, h = socket.socketpair()
    record: list[object] = []

    def waiter():
        try:
            yield from wait()
            record.append("woke")
        except OSError as exc:
            record.append(exc.errno)
        h.send(b"done")

    def sleeper():
        yield Sleep(3600)

    def closer():
        yield
        close()

    def guard(*tids):
        yield ReadWait(g)
        for tid in tids:
            yield KillTask(tid)

    timer = threading.Timer(1.0, h.send, (b"timeout",))
    timer.start()
    try:
        with g, h:
            run(sched, guard(sched.new(sleeper()), sched.new(waiter())), closer())
    finally:
        timer.cancel()
    return record


def test_waiter_on_a_plainly_closed_socket_fails_at_once_despite_a_long_sleeper(
    sched, socketpair,
):
    """sock.close() without yield (here: leaving ``with sock:``) fails the task waiting on
    it with EBADF at once, even while another task sleeps for an hour."""
    a, _ = socketpair
    sock = pyos.Socket(a)

    def close():
        with sock:
            pass

    assert _fail_closed_waiter_next_to_a_long_sleeper(
        sched, lambda: (yield sock.recv(10)), close) == [errno.EBADF]


def test_waiter_on_a_socket_closed_behind_the_kernels_back_fails_despite_a_long_sleeper(
    sched, socketpair,
):
    """A socket closed behind the kernel's back (a raw close) fails its waiter with EBADF
    as soon as the kernel goes idle, even while a task sleeps for an hour: the idle audit
    runs whatever timers are pending.  (select() itself fails on the closed descriptor;
    epoll just forgets it, so only the audit can find it.)"""
    a, _ = socketpair
    assert _fail_closed_waiter_next_to_a_long_sleeper(
        sched, lambda: (yield ReadWait(a)), a.close) == [errno.EBADF]


def test_a_broken_waiter_that_timed_out_and_waits_again_is_not_failed(vsched, socketpair):
    """A waiter found broken by the idle audit whose deadline falls due in the same cycle
    gets its TaskTimeout; then it waits on another, healthy socket: that wait must not be
    failed with EBADF by the stale broken entry (nor the socket left with a registration
    nobody owns)."""
    a, _ = socketpair
    c, d = socket.socketpair()
    record: list[object] = []

    def waiter():
        try:
            yield pyos.timeout_after(1, ReadWait(a))
        except pyos.TaskTimeout:
            record.append("timeout")
        try:
            yield ReadWait(c)
            record.append(("read", c.recv(10)))
        except OSError as exc:
            record.append(("error", exc.errno))

    def closer():
        a.close()                  # behind the kernel's back: the audit finds it
        vsched.clock.advance(2)    # ... in the cycle in which the deadline is due
        return
        yield

    def sender():
        yield Sleep(5)
        d.send(b"hi")

    with c, d:
        run(vsched, waiter(), closer(), sender())
    assert record == ["timeout", ("read", b"hi")]
    assert len(vsched._poller) == 0 and vsched._poller.broken == []


def test_reading_again_from_a_socket_closed_behind_the_kernels_back_fails_at_once(
    sched, socketpair,
):
    """A task that read a message, closed its socket behind the kernel's back and reads
    again gets EBADF at once, as a first read does: the run loop's shortcut for a socket
    reading again must not take a stale registration for a live one (the task would hang
    until the kernel next idles)."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []

    async def reader():
        record.append(await sock.recv(10))   # short: the next recv waits first
        a.close()
        try:
            await sock.recv(10)
            record.append("woke")
        except OSError as exc:
            record.append(exc.errno)

    def spinner():
        for _ in range(100):                  # never idle meanwhile: no audit
            yield
        record.append("spun")

    def writer():
        b.send(b"hi")
        yield

    run(sched, reader(), writer(), spinner())
    assert record == [b"hi", errno.EBADF, "spun"]
