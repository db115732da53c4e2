"""pyos.Socket: blocking-style sub-coroutines over non-blocking sockets, with yield and await.

Round trips, errors and many connections; streaming through small buffers is in
test_socket_streams.py, fairness in test_socket_fairness.py.  Everything runs on both
pollers (the ``sched`` fixture) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import array
import os
import socket

from helpers import run_watched

import pyos


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

    run_watched(sched, server(), client())
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

    run_watched(sched, server(), client())
    assert record == [("accepted", "127.0.0.1"), b"VIA CONNECT", b"",
                      ("accepted", "127.0.0.1"), b"VIA OPEN_CONNECTION"]


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
        run_watched(sched, client())
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

    run_watched(sched, sender())
    assert record in (["BrokenPipeError"], ["ConnectionResetError"])


def test_sendall_counts_bytes_not_items(sched, socketpair):
    """A buffer of 4-byte items whose first send takes as many bytes as it has items is
    not all sent: sendall goes on until every byte has gone (bytes and bytearray, whose
    len() is their size, end at once)."""
    a, _b = socketpair

    class Partial:  # a socket whose send takes at most 1,000 bytes a call
        def __init__(self) -> None:
            self.got = bytearray()
            self.fileno = a.fileno     # (a real descriptor, always writable, to wait on)

        def setblocking(self, flag: bool) -> None:
            pass

        def send(self, data) -> int:
            taken = bytes(memoryview(data).cast("B")[:1000])
            self.got += taken
            return len(taken)

    items = array.array("i", range(1000))          # 1,000 items, 4,000 bytes
    fake = Partial()
    sock = pyos.Socket(fake)  # type: ignore[arg-type]

    def sender():
        yield sock.sendall(memoryview(items))
        yield sock.sendall(b"y" * 1000)
        yield sock.sendall(bytearray(b"z" * 10))

    run_watched(sched, sender())
    assert fake.got == items.tobytes() + b"y" * 1000 + b"z" * 10


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

    run_watched(sched, first(), second())
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

    run_watched(sched, server(), *(client(i) for i in range(200)))
    assert len(replies) == 200
    assert replies == {i: b"client %d" % i for i in range(200)}
