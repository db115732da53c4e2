"""pyos.Socket streams: partial sends and EAGAIN through small buffers, short reads, and
sendall of buffers whose items are wider than a byte.

Everything runs on both pollers (the ``sched`` fixture) and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import array
import os
import socket

import pytest
from conftest import drain_socket, fill_socket
from helpers import run_watched

import pyos

SMALL_BUFFER = 4096


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

    run_watched(sched, receiver(), sender())
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

    run_watched(sched, reader(), writer())
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

    run_watched(sched, sender(), drainer())
    assert record[0] is True and 0 < record[1] < 4 << 20


@pytest.mark.parametrize("small_buffers", [False, True])
def test_sendall_of_an_int_array_sends_every_byte(sched, socketpair, small_buffers):
    """sendall(array.array('i', ...)) counts bytes, not items: the peer receives exactly
    arr.tobytes(), whether it fits at once or goes through 4 KiB buffers piecemeal."""
    a, b = socketpair
    count = 200_000 if small_buffers else 1000   # 800 KB, or 4 KB that fits at once
    arr = array.array("i", range(-count // 2, count - count // 2))
    if small_buffers:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sender_sock, receiver_sock = pyos.Socket(a), pyos.Socket(b)
    received, chunks = bytearray(), [0]

    def sender():
        yield sender_sock.sendall(arr)
        sender_sock.shutdown()

    def receiver():
        while chunk := (yield receiver_sock.recv(65536)):
            received.extend(chunk)
            chunks[0] += 1

    run_watched(sched, receiver(), sender())
    assert len(received) == len(arr) * arr.itemsize
    assert received == arr.tobytes()
    if small_buffers:
        assert chunks[0] > 10   # it really did go piecemeal
