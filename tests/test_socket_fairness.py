"""pyos.Socket fairness: a stream whose operations never wait still lets others run.

Everything runs on both pollers (the ``sched`` fixture) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import socket

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
