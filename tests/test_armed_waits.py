"""The run loop's shortcut for a socket reading again: its wait is "armed" by the poller.

epoll keeps a registration across waits, and the wait that holds it (``wait.armed`` is
the poller) is trusted by the run loop with one attribute test and one fileno() call.
That is right only while the poller keeps ``armed`` in step with the registration:
these tests change the registration under a wait and check that the wait is disarmed,
so that waiting again registers anew instead of waiting on a descriptor nobody watches.

Every test runs on both backends (select never arms a wait: it only has to work).
"""

from __future__ import annotations

import errno
import os
import socket

import pytest
from helpers import run_watched

import pyos
from pyos import Sleep


def test_a_wait_whose_registration_was_dropped_is_disarmed_and_reads_again(sched, socketpair):
    """Data arrives while nobody reads: epoll reports it, nobody waits, so the poller stops
    watching the descriptor.  The socket's next recv waits at once (its last message was
    short) on the same wait object: it must register again, not hang."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []

    def reader():
        record.append((yield sock.recv(10)))   # nothing yet: waits, and holds the registration
        record.append(sock._wait_read.armed is sched._poller)
        b.send(b"2")                           # readable while nobody reads ...
        yield Sleep(0.01)                      # ... which a poll reports: registration dropped
        record.append(sock._wait_read.armed is None)
        record.append((yield sock.recv(10)))   # waits first: b"1" was short

    def writer():
        yield
        b.send(b"1")

    run_watched(sched, reader(), writer(), limit=5)
    armed = sched._poller.__class__.__name__ == "EpollPoller"
    assert record == [b"1", armed, True, b"2"]


def test_another_file_under_the_same_number_disarms_the_old_wait(sched, socketpair):
    """A socket closed behind the kernel's back, its number given to another socket that
    then waits there: the registration is the new file's, and the old socket's wait is no
    longer armed.  The old socket, read again, fails at once with EBADF: its wait must
    not be registered for the new file that now has its number (it would hang there)."""
    a, b = socketpair
    x, y = socket.socketpair()
    fd, sock, record = a.fileno(), pyos.Socket(a), []

    def reader():
        record.append((yield sock.recv(10)))   # waits, and holds the registration
        a.close()                              # behind the kernel's back
        os.dup2(x.fileno(), fd)                # the same number, another socket
        other = pyos.Socket(socket.socket(fileno=fd))
        record.append((yield other.recv(10)))  # waits there: the new file's registration
        record.append(sock._wait_read.armed is None)
        try:
            yield sock.recv(10)                # waits first: b"old" was short
        except OSError as exc:
            record.append(exc.errno == errno.EBADF)
        other.close()

    def writer():
        yield
        b.send(b"old")
        for _ in range(3):                     # the reader wakes, and waits on the new socket
            yield
        y.send(b"new")

    with x, y:
        run_watched(sched, reader(), writer(), limit=5)
    assert record == [b"old", b"new", True, True]


def test_closing_the_poller_disarms_its_waits(socketpair):
    """A wait outlives its scheduler (the socket is kept): it must not stay armed by a
    poller that is gone, nor keep that poller alive."""
    a, b = socketpair
    sock = pyos.Socket(a)
    sched = pyos.Scheduler(poller="epoll")

    def reader():
        yield sock.recv(10)

    def writer():
        yield
        b.send(b"x")

    try:
        run_watched(sched, reader(), writer(), limit=5)
        assert sock._wait_read.armed is sched._poller
    finally:
        sched.close()
    assert sock._wait_read.armed is None


@pytest.mark.parametrize("event", ["read", "write"])
def test_a_reused_wait_on_a_file_object_closed_behind_the_kernels_back_fails_the_task(
        sched, event):
    """A file object's fileno() raises once it is closed (a socket's gives -1).  Its wait,
    reused and armed, must fail the task with EBADF, as any closed file does: the error is
    the task's, and the run loop's shortcut must not raise it out of mainloop()."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    mine, other = (r, w) if event == "read" else (w, r)
    f = os.fdopen(mine, "rb" if event == "read" else "wb", buffering=0)
    wait, record = (pyos.ReadWait if event == "read" else pyos.WriteWait)(f), []

    def waiter():
        yield wait                             # waits, and holds the registration
        record.append("ready")
        f.close()                              # behind the kernel's back
        try:
            yield wait
        except OSError as exc:
            record.append(exc.errno)

    def writer():
        yield
        if event == "read":
            os.write(w, b"x")

    try:
        run_watched(sched, waiter(), writer(), limit=5)
    finally:
        os.close(other)
    assert record == ["ready", errno.EBADF]
