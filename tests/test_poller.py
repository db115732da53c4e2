"""ReadWait/WriteWait and the poller backends: wake-ups, timeouts, fairness and scale.

Every test runs on both backends (the ``sched`` fixture), and the I/O tests run once
with a socket object and once with its raw descriptor number (the ``as_fd`` fixture),
after trio's test_io.  Descriptors closed under a waiter are in test_closed_fds.py.
"""

from __future__ import annotations

import fcntl
import os
import resource
import socket
import threading
import time

import pytest
from conftest import drain_socket, fill_socket
from helpers import run

import pyos
from pyos import KillTask, ReadWait, Sleep, WriteWait

WAITS = {"read": ReadWait, "write": WriteWait}


def ensure_nofile(n: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to at least n (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(n, hard)), hard))


def block(event: str, a: socket.socket) -> None:
    """Make a not ready for event: nothing to read (already), or a full send buffer."""
    if event == "write":
        fill_socket(a)


def unblock(event: str, b: socket.socket) -> None:
    """Make b's peer ready for event again."""
    b.send(b"x") if event == "read" else drain_socket(b)


@pytest.mark.parametrize("event", ["read", "write"])
def test_wait_blocks_until_ready_while_others_run(sched, socketpair, as_fd, event):
    """A waiting task sleeps while others run and wakes once its descriptor is ready."""
    a, b = socketpair
    block(event, a)
    record = []

    def waiter():
        record.append("wait")
        yield WAITS[event](as_fd(a))
        record.append("woke")

    def other():
        for i in range(3):
            record.append(f"other {i}")
            yield
        unblock(event, b)
        record.append("ready")

    run(sched, waiter(), other())
    assert record == ["wait", "other 0", "other 1", "other 2", "ready", "woke"]
    assert len(sched._poller) == 0


def test_fd_beyond_fd_setsize(sched, socketpair, poller):
    """select throws a clear ValueError into the asking task for fd >= 1024; epoll serves it."""
    a, b = socketpair
    ensure_nofile(2048)
    big = fcntl.fcntl(a.fileno(), fcntl.F_DUPFD, 1024)
    outcome = []

    def waiter():
        for fd in (big, a.fileno()):   # after the error the task and the kernel carry on
            b.send(b"x")
            try:
                yield ReadWait(fd)
                outcome.append(os.read(fd, 10))
            except ValueError as exc:
                outcome.append(str(exc))

    try:
        run(sched, waiter())
    finally:
        os.close(big)
    if poller == "select":
        assert "FD_SETSIZE" in outcome[0] and outcome[1:] == [b"xx"]
    else:
        assert outcome == [b"x", b"x"]
    assert len(sched._poller) == 0


def test_poll_timeouts(sched, socketpair):
    """0 while tasks are ready; once idle, audit_after first even with a timer pending (so a
    plainly closed descriptor is found at once), then the rest of the timer; audit_after
    again after tasks ran, then None."""
    a, b = socketpair
    sched.audit_after = 0.01
    real_poll, timeouts = sched._poller.poll, []

    def recording_poll(timeout):
        timeouts.append(timeout)
        if timeout is None or len(timeouts) == 20:  # the world answers once the kernel blocks
            b.send(b"x")
        return real_poll(timeout)

    sched._poller.poll = recording_poll

    def reader():
        yield ReadWait(a)
        assert a.recv(1) == b"x"

    def spinner():
        for _ in range(3):
            yield
        yield Sleep(0.05)

    run(sched, reader(), spinner())
    assert timeouts[:4] == [0, 0, 0, 0.01]
    assert 0 < timeouts[4] <= 0.04
    assert timeouts[5:] == [0.01, None]


def test_idle_kernel_uses_no_cpu(sched, socketpair):
    """Waiting on a timer and then on I/O alone burns ~0% CPU (no busy polling)."""
    a, b = socketpair
    sched.audit_after = 0.05   # so the wait covers the audit poll and the blocking one

    def reader():
        yield ReadWait(a)

    def sleeper():
        yield Sleep(0.15)
        threading.Timer(0.25, b.send, (b"x",)).start()

    wall, cpu = time.perf_counter(), time.process_time()
    run(sched, reader(), sleeper())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert wall >= 0.35
    assert cpu < 0.1 * wall


def test_spinning_task_does_not_starve_io(sched, socketpair, as_fd):
    """A ready descriptor is served within a couple of rounds of a task that never blocks."""
    a, b = socketpair
    spins, seen = [0], []

    def reader():
        yield ReadWait(as_fd(a))
        seen.append(spins[0])

    def spinner():
        while not seen and spins[0] < 1000:
            spins[0] += 1
            if spins[0] == 10:
                b.send(b"x")
            yield

    run(sched, reader(), spinner())
    assert seen and seen[0] - 10 <= 2


@pytest.mark.parametrize("event", ["read", "write"])
def test_killed_waiter_is_unregistered(sched, socketpair, as_fd, event):
    """KillTask in a wait unregisters it at once; a fresh wait on the descriptor works."""
    a, b = socketpair
    block(event, a)
    record = []

    def waiter():
        yield WAITS[event](as_fd(a))
        record.append("the dead waiter woke")

    def killer(tid):
        yield
        record.append(len(sched._poller))
        record.append((yield KillTask(tid)))
        record.append(len(sched._poller))
        unblock(event, b)
        yield WAITS[event](as_fd(a))
        record.append("fresh wait woke")

    tid = sched.new(waiter())
    run(sched, killer(tid))
    assert record == [1, True, 0, "fresh wait woke"]
    assert len(sched._poller) == 0


@pytest.mark.parametrize("event", ["read", "write"])
def test_second_waiter_gets_resource_busy(sched, socketpair, as_fd, event):
    """A second wait for the same event on one descriptor raises ResourceBusy; the first
    waiter still wakes, and so does a waiter for the other event on the same socket."""
    a, b = socketpair
    fill_socket(a)   # neither readable nor writable
    other = "write" if event == "read" else "read"
    record = []

    def waiter(kind):
        yield WAITS[kind](as_fd(a))
        record.append(kind)

    def second():
        try:
            yield WAITS[event](as_fd(a))
        except pyos.ResourceBusy:
            record.append("busy")
        unblock(event, b)
        for _ in range(3):
            yield
        unblock(other, b)

    run(sched, waiter(event), waiter(other), second())
    assert record == ["busy", event, other]
    assert len(sched._poller) == 0


@pytest.mark.parametrize("poller", ["epoll"])   # select stops at FD_SETSIZE, tested above
def test_thousands_of_descriptors_with_epoll(sched):
    """1,600 descriptors waited on at once (epoll) all wake with their own data."""
    ensure_nofile(4096)
    pairs = [socket.socketpair() for _ in range(800)]
    expected = {s.fileno(): b"%d" % peer.fileno() for a, b in pairs for s, peer in ((a, b), (b, a))}
    got, registered = {}, []

    def reader(s):
        yield ReadWait(s)
        got[s.fileno()] = s.recv(16)   # each end is sent its peer's number

    def driver():
        yield
        registered.append(len(sched._poller))
        for a, b in pairs:
            a.send(b"%d" % a.fileno())
            b.send(b"%d" % b.fileno())

    try:
        run(sched, *(reader(s) for pair in pairs for s in pair), driver())
    finally:
        for s in [s for pair in pairs for s in pair]:
            s.close()
    assert registered == [1600]
    assert got == expected
    assert len(sched._poller) == 0


def _count_polls(sched) -> list[int]:
    """Make sched's poller count its poll() calls; returns the one-item counter."""
    count, real_poll = [0], sched._poller.poll

    def counting_poll(timeout):
        count[0] += 1
        return real_poll(timeout)

    sched._poller.poll = counting_poll
    return count


def _polls_while_sleeping(count: list[int], record: list[object]):
    """Sleep 20 ms and record how many polls the kernel made meanwhile: 1 or 2 when idle,
    thousands when it spins on an event nobody can clear."""
    before = count[0]
    yield Sleep(0.02)
    record.append(("polls", count[0] - before))


@pytest.mark.parametrize("how", ["plain", "yield"])
def test_closing_a_socket_open_elsewhere_leaves_no_registration(sched, how):
    """Socket.close() on a socket whose file lives on in a dup (or a forked child) leaves
    nothing registered: the kernel does not spin when that file becomes ready."""
    a, b = socket.socketpair()
    dup, sock, record = a.dup(), pyos.Socket(a), []
    count = _count_polls(sched)

    def user():
        record.append((yield sock.recv(10)))    # nothing there yet: it waits, registered
        if how == "plain":
            sock.close()
        else:
            yield sock.close()
        b.send(b"ready")                        # the file, still open as dup, is readable
        yield from _polls_while_sleeping(count, record)
        if sched._poller.__class__.__name__ == "EpollPoller":
            record.append((sched._poller._armed, sched._poller._epoll.poll(0)))

    def sender():
        yield
        b.send(b"hi")

    with dup, b:
        run(sched, user(), sender())
    assert record[0] == b"hi"
    assert record[1][0] == "polls" and record[1][1] <= 5, record
    assert record[2:] in ([], [({}, [])])


def test_epoll_recovers_from_a_registration_it_cannot_remove(socketpair):
    """A raw socket closed behind the kernel's back while a dup keeps its file open stays
    in epoll under a number that no longer exists; the poller starts a fresh epoll rather
    than spin on it."""
    sched = pyos.Scheduler(poller="epoll")
    a, b = socketpair
    dup, record = a.dup(), []
    count = _count_polls(sched)

    def user():
        b.send(b"x")
        yield ReadWait(a)        # registered, and left registered (lazily) after the wake
        a.close()                # behind the kernel's back: epoll can no longer remove it
        yield from _polls_while_sleeping(count, record)
        record.append(sched._poller._epoll.poll(0))

    with dup:
        try:
            run(sched, user())
        finally:
            sched.close()
    assert record[0][1] <= 5 and record[1] == [], record


@pytest.mark.parametrize(("what", "says"), [
    ("/dev/null", "is a character device"),
    ("a directory", "is a directory"),
    ("a regular file", "is a regular file"),
])
def test_epoll_names_what_it_refuses_to_watch(tmp_path, what, says):
    """epoll refuses a file that cannot be polled with a ValueError that says what the file
    is: /dev/null and directories are not "regular files"."""
    if what == "/dev/null":
        fd = os.open(os.devnull, os.O_RDONLY)
    elif what == "a directory":
        fd = os.open(tmp_path, os.O_RDONLY)
    else:
        (tmp_path / "f").write_bytes(b"data")
        fd = os.open(tmp_path / "f", os.O_RDONLY)
    errors = []

    def reader():
        try:
            yield ReadWait(fd)
        except ValueError as exc:
            errors.append(str(exc))

    sched = pyos.Scheduler(poller="epoll")
    try:
        run(sched, reader())
    finally:
        sched.close()
        os.close(fd)
    [error] = errors
    assert says in error, error
    assert ("regular" in error) == (what == "a regular file"), error
