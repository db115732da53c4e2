"""pyos.Socket: blocking-style sub-coroutines over non-blocking sockets, with yield and await.

Everything runs on both pollers (the ``sched`` fixture) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import array
import os
import socket
import time

import pytest
from conftest import drain_socket, fill_socket

import pyos

SMALL_BUFFER = 4096


def watchdog(sched: pyos.Scheduler, limit: float):
    """Kill every other task still there after limit seconds: a bug fails the test, not hangs."""
    me, deadline = (yield pyos.GetTid()), time.monotonic() + limit
    while set(sched._tasks) != {me} and time.monotonic() < deadline:
        yield pyos.Sleep(0.02)
    for tid in set(sched._tasks) - {me}:
        yield pyos.KillTask(tid)
        yield   # one call per turn: never rely on the kernel's calls_per_turn budget


def run(sched: pyos.Scheduler, *targets, limit: float = 10.0) -> None:
    for target in targets:
        sched.new(target)
    sched.new(watchdog(sched, limit))
    sched.mainloop()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_generator_tasks_round_trip(sched):
    """accept, connect, open_connection, sendall, recv (with EOF) and close with plain yield."""
    listener = pyos.listen("127.0.0.1", 0)
    address = listener.getsockname()
    record = []

    def server():
        for _ in range(2):
            client, peer = yield listener.accept()
            record.append(("accepted", peer[0]))
            while data := (yield client.recv(100)):
                yield client.sendall(data.upper())
            yield client.close()
        yield listener.close()

    def client():
        sock = pyos.Socket(socket.socket())
        yield sock.connect(address)
        yield sock.sendall(b"via connect")
        sock.shutdown()
        record.append((yield sock.recv(100)))
        record.append((yield sock.recv(100)))
        yield sock.close()
        sock = yield pyos.open_connection(*address)
        yield sock.sendall(b"via open_connection")
        sock.shutdown()
        record.append((yield sock.recv(100)))
        yield sock.close()

    run(sched, server(), client())
    assert record == [("accepted", "127.0.0.1"), b"VIA CONNECT", b"",
                      ("accepted", "127.0.0.1"), b"VIA OPEN_CONNECTION"]


def test_async_tasks_round_trip(sched):
    """The same operations awaited from async def tasks."""
    listener = pyos.listen("127.0.0.1", 0)
    address = listener.getsockname()
    record = []

    async def server():
        for _ in range(2):
            client, peer = await listener.accept()
            record.append(("accepted", peer[0]))
            while data := await client.recv(100):
                await client.sendall(data.upper())
            await client.close()
        await listener.close()

    async def client():
        sock = pyos.Socket(socket.socket())
        await sock.connect(address)
        await sock.sendall(b"via connect")
        sock.shutdown()
        record.append(await sock.recv(100))
        record.append(await sock.recv(100))
        await sock.close()
        sock = await pyos.open_connection(*address)
        await sock.sendall(b"via open_connection")
        sock.shutdown()
        record.append(await sock.recv(100))
        await sock.close()

    run(sched, server(), client())
    assert record == [("accepted", "127.0.0.1"), b"VIA CONNECT", b"",
                      ("accepted", "127.0.0.1"), b"VIA OPEN_CONNECTION"]


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "int-array"])
def test_stream_megabytes_through_small_buffers(sched, kind):
    """3 MB through 4 KiB socket buffers: EAGAIN and partial sends handled, every byte checked."""
    payload = os.urandom(3 * 1024 * 1024 + 12)
    data = {"bytes": payload, "bytearray": bytearray(payload),
            "int-array": memoryview(array.array("i", payload))}[kind]
    listener = pyos.listen("127.0.0.1", 0)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before the SYN
    received, chunks = bytearray(), [0]

    async def receiver():       # an async task ...
        conn, _ = await listener.accept()
        await listener.close()
        while chunk := await conn.recv(65536):
            received.extend(chunk)
            chunks[0] += 1
        await conn.close()

    def sender():               # ... talking to a generator task
        sock = pyos.Socket(socket.socket())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        yield sock.connect(listener.getsockname())
        yield sock.sendall(data)
        yield sock.close()

    run(sched, receiver(), sender())
    assert len(received) == len(payload)
    assert received == payload
    assert chunks[0] > 10   # it really did arrive piecemeal


def test_recv_waits_after_a_short_read(sched, socketpair):
    """recv returns what is there; after a short read the next one waits for new data."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []
    b.send(b"0123456789")

    def reader():
        for _ in range(4):
            record.append((yield sock.recv(4)))

    def writer():
        for _ in range(5):
            yield
        record.append("send")
        b.send(b"abcd")

    run(sched, reader(), writer())
    assert record == [b"0123", b"4567", b"89", "send", b"abcd"]


def test_send_waits_for_room_then_returns_the_count(sched, socketpair):
    """send() blocks while the buffer is full, then returns how many bytes went (maybe fewer)."""
    a, b = socketpair
    fill_socket(a)
    sock, record = pyos.Socket(a), []

    def sender():
        record.append((yield sock.send(b"z" * (4 << 20))))

    def drainer():
        yield
        record.append(drain_socket(b) > 0)

    run(sched, sender(), drainer())
    assert record[0] is True and 0 < record[1] < 4 << 20


def test_connect_refused_raises_in_the_task_and_leaks_nothing(sched):
    """A refused connection raises ConnectionRefusedError at the yield; no descriptor is left."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))   # bound, never listening: connecting is refused
    record = []

    def client():
        try:
            yield pyos.open_connection(*closed.getsockname())
        except ConnectionRefusedError:
            record.append("refused")

    try:
        before = open_fds()
        run(sched, client())
        assert open_fds() == before
    finally:
        closed.close()
    assert record == ["refused"]


def test_sendall_to_a_vanished_peer_raises(sched, socketpair):
    """Sending to a peer that closed raises a ConnectionError in the task, not in the kernel."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []

    def sender():
        b.close()
        try:
            yield sock.sendall(b"x" * (1 << 20))
        except ConnectionError as exc:
            record.append(type(exc).__name__)

    run(sched, sender())
    assert record in (["BrokenPipeError"], ["ConnectionResetError"])


def test_two_readers_of_one_socket(sched, socketpair):
    """A second task receiving on a socket already being received on gets ResourceBusy."""
    a, b = socketpair
    sock, record = pyos.Socket(a), []

    def first():
        record.append((yield sock.recv(10)))

    def second():
        try:
            yield sock.recv(10)
        except pyos.ResourceBusy:
            record.append("busy")
        b.send(b"data")

    run(sched, first(), second())
    assert record == ["busy", b"data"]


def test_many_concurrent_connections(sched):
    """200 client tasks each get their own bytes back through one accepting server."""
    listener = pyos.listen("127.0.0.1", 0)
    replies = {}

    def echo(conn):
        while data := (yield conn.recv(1024)):
            yield conn.sendall(data)
        yield conn.close()

    def server():
        for _ in range(200):
            conn, _ = yield listener.accept()
            yield pyos.NewTask(echo(conn))
        yield listener.close()

    async def client(i):
        sock = await pyos.open_connection(*listener.getsockname())
        await sock.sendall(b"client %d" % i)
        sock.shutdown()
        reply = b""
        while chunk := await sock.recv(1024):
            reply += chunk
        replies[i] = reply
        await sock.close()

    run(sched, server(), *(client(i) for i in range(200)))
    assert len(replies) == 200
    assert replies == {i: b"client %d" % i for i in range(200)}


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
        run(sched, worker() if style == "generator" else async_worker(), spinner())
    finally:
        mine.close()
        peer.close()
    assert sum(streaks) == 1000
    assert max(streaks) <= sched.calls_per_turn
