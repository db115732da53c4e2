"""pyos.Socket fairness: a stream whose operations never wait still lets others run, every
SWITCH_EVERY operations, while a request/response loop never pays for a needless switch.

Everything runs on both pollers (the ``sched`` fixture) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import socket
from itertools import groupby, pairwise

import pytest
from helpers import run_watched

import pyos


@pytest.mark.parametrize("op", ["recv", "sendall"])
@pytest.mark.parametrize("style", ["generator", "async"])
def test_io_that_never_waits_still_lets_others_run(sched, op, style):
    """recv/sendall calls that never have to wait still give up the CPU, at most
    calls_per_turn in a row: one busy stream cannot starve every other task."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        mine = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    peer.sendall(b"x" * 64000)   # TCP: plenty to read, and room for 64 KB more to send
    sock, spins, streaks = pyos.Socket(mine), [0], [0]

    def step():
        return sock.recv(64) if op == "recv" else sock.sendall(b"y" * 64)

    def note(last: int) -> int:   # count the calls in a row with no other task running
        if spins[0] == last:
            streaks[-1] += 1
        else:
            streaks.append(1)
        return spins[0]

    def worker():
        last = 0
        for _ in range(1000):
            yield step()
            last = note(last)

    async def async_worker():
        last = 0
        for _ in range(1000):
            await step()
            last = note(last)

    def spinner():
        while spins[0] < 5000 and sum(streaks) < 1000:
            spins[0] += 1
            yield

    try:
        run_watched(sched, worker() if style == "generator" else async_worker(), spinner())
    finally:
        mine.close()
        peer.close()
    assert sum(streaks) == 1000
    assert max(streaks) <= sched.calls_per_turn


@pytest.mark.parametrize("every", [None, 5])
@pytest.mark.parametrize("op", ["recv", "sendall"])
def test_ready_io_yields_exactly_every_switch_every_operations(sched, socketpair, op, every):
    """Operations that never wait run in streaks of at most SWITCH_EVERY (16, or as set on
    the socket) between two turns of another task, and every streak but the first and the
    last is exactly that long: the task yields that often, and no more often."""
    a, b = socketpair
    sock = pyos.Socket(a)
    if every is not None:
        sock.SWITCH_EVERY = every
    limit = sock.SWITCH_EVERY
    assert pyos.Socket.SWITCH_EVERY == 16
    calls = 10 * limit + 3
    if op == "recv":
        b.sendall(b"x" * 64 * calls)   # all there before the first recv: none has to wait
    record: list[str] = []
    done = [False]

    def worker():
        for _ in range(calls):
            yield (sock.recv(64) if op == "recv" else sock.sendall(b"y" * 64))
            record.append("io")
        done[0] = True

    def other():
        for _ in range(10 * calls):
            if done[0]:
                break
            record.append("other")
            yield

    run_watched(sched, worker(), other())
    streaks = [len(list(run)) for event, run in groupby(record) if event == "io"]
    assert sum(streaks) == calls
    assert max(streaks) == limit
    assert streaks[1:-1] == [limit] * (len(streaks) - 2)


@pytest.mark.parametrize("size", [1024, 4])   # larger than a message, and exactly one
def test_request_response_loop_never_takes_a_bare_yield(sched, socketpair, size):
    """In an echo loop every recv has to wait for the peer, which resets the streak: each
    round trip costs the server and the client exactly one scheduler run each, for many
    times SWITCH_EVERY rounds (a bare yield would cost a second run)."""
    a, b = socketpair
    server_sock, client_sock = pyos.Socket(a), pyos.Socket(b)
    rounds = 5 * pyos.Socket.SWITCH_EVERY
    runs: dict[str, list[int]] = {"server": [], "client": []}
    replies: list[bytes] = []

    def server():
        while data := (yield server_sock.recv(size)):
            runs["server"].append(tasks["server"].runs)
            yield server_sock.sendall(data)

    def client():
        for _ in range(rounds):
            yield client_sock.sendall(b"ping")
            replies.append((yield client_sock.recv(size)))
            runs["client"].append(tasks["client"].runs)
        client_sock.shutdown()

    tasks = {"server": sched._tasks[sched.new(server())],
             "client": sched._tasks[sched.new(client())]}
    run_watched(sched)
    assert replies == [b"ping"] * rounds
    for name in ("server", "client"):
        steps = [later - earlier for earlier, later in pairwise(runs[name])]
        assert steps == [1] * (rounds - 1), (name, steps)
