"""Fixtures shared by the whole suite: schedulers on both pollers, socket pairs, echo
servers, and the socket helpers fill_socket and drain_socket (others are in helpers.py).

Nothing here sleeps for real: tests count scheduler steps, or run on virtual time
(``vsched``); only the few tests about real time itself use short Sleep()s.  Every loop is bounded.
"""

from __future__ import annotations

import resource
import socket
from collections.abc import Iterator

import pytest
from helpers import Server

import pyos

POLLERS = ["epoll", "select"]


@pytest.fixture(params=POLLERS)
def poller(request: pytest.FixtureRequest) -> str:
    """Run the test once with each poller backend."""
    return request.param


@pytest.fixture
def sched(poller: str) -> Iterator[pyos.Scheduler]:
    """A fresh scheduler on each backend, closed afterwards."""
    s = pyos.Scheduler(poller=poller)
    yield s
    s.close()


@pytest.fixture
def vsched(poller: str) -> Iterator[pyos.Scheduler]:
    """A fresh scheduler on each backend and on virtual time (``sched.clock``, from 0.0)."""
    s = pyos.Scheduler(poller=poller, clock=pyos.VirtualClock())
    yield s
    s.close()


@pytest.fixture
def socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected, non-blocking stream sockets, closed afterwards."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture(params=["socket", "fileno"])
def as_fd(request):
    """Hand ReadWait/WriteWait the socket object itself, or its descriptor number."""
    return (lambda s: s) if request.param == "socket" else (lambda s: s.fileno())


@pytest.fixture
def start(tmp_path):
    """start(*args, demo=...) launches a demo server (the echo server unless told);
    every one is killed at teardown."""
    servers: list[Server] = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))

    def launch(*args: str, demo: str = "echo_server.py") -> Server:
        servers.append(Server(tmp_path, *args, demo=demo))
        return servers[-1]

    yield launch
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
        server.proc.stdout.close()


def fill_socket(sock: socket.socket) -> int:
    """Write into sock until its send buffer (and the peer's receive buffer) is full."""
    total = 0
    for _ in range(100_000):  # bounded: buffers are at most a few MB
        try:
            total += sock.send(b"x" * 65536)
        except BlockingIOError:
            return total
    raise AssertionError("socket never filled up")


def drain_socket(sock: socket.socket) -> int:
    """Read everything currently buffered on sock; return how many bytes."""
    total = 0
    for _ in range(100_000):
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return total
        if not chunk:
            return total
        total += len(chunk)
    raise AssertionError("socket never drained")
