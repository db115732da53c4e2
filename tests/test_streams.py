"""Line streams (pyos/streams.py) on pyos.Socket, and on a pipe to show the layer is reusable.

readline / readuntil / readexactly / read / write, their limits and errors, what an
interrupted read leaves behind, one reader at a time, and recv after a stream read.
Everything runs on both pollers (the ``sched`` fixture) over socket pairs; nothing sleeps.
open_connection has its own file, test_open_connection.py.
"""

from __future__ import annotations

import os
import socket
import types

import pytest
from helpers import run_watched

import pyos
from pyos.streams import BufferedStream


def reads(sched, stream, *calls):
    """Run one task making each read call in turn; return each result or exception type."""
    record = []

    def reader():
        for make in calls:
            try:
                record.append((yield make(stream)))
            except (pyos.PyosError, ValueError, EOFError) as exc:
                record.append(type(exc).__name__)

    run_watched(sched, reader())
    return record


def test_readline_across_many_small_chunks(sched, socketpair):
    """Lines that arrive a byte at a time come back whole, each with its newline."""
    a, b = socketpair
    stream, lines = pyos.Socket(a), []
    text = b"first line\nsecond\n\nlast, no newline"

    def writer():
        for i in range(len(text)):
            b.send(text[i:i + 1])
            yield
            yield
        b.shutdown(socket.SHUT_WR)

    def reader():
        while line := (yield stream.readline()):
            lines.append(line)

    run_watched(sched, reader(), writer())
    assert lines == [b"first line\n", b"second\n", b"\n", b"last, no newline"]


def test_readline_at_eof_returns_the_partial_line_then_empty(sched, socketpair):
    a, b = socketpair
    b.sendall(b"one\ntwo")
    b.shutdown(socket.SHUT_WR)
    readline = pyos.Socket.readline
    assert reads(sched, pyos.Socket(a), readline, readline, readline) == [b"one\n", b"two", b""]


def test_readuntil_includes_the_separator_and_raises_incomplete_read_at_eof(sched, socketpair):
    a, b = socketpair
    stream, caught = pyos.Socket(a), []
    b.sendall(b"a--b--c")
    b.shutdown(socket.SHUT_WR)

    def reader():
        caught.append((yield stream.readuntil(b"--")))
        caught.append((yield stream.readuntil(b"--")))
        try:
            yield stream.readuntil(b"--")
        except pyos.IncompleteRead as exc:
            caught.append(exc)

    run_watched(sched, reader())
    assert caught[:2] == [b"a--", b"b--"]
    assert (caught[2].partial, caught[2].expected) == (b"c", None)
    assert len(caught) == 3


@pytest.mark.parametrize(("data", "call", "expected", "then"), [
    # readline: the newline is the limit-th byte: accepted.
    (b"abcd\nnext\n", lambda s: s.readline(limit=5), b"abcd\n", b"next\n"),
    # one byte longer: LimitOverrun, and the line is discarded through its newline.
    (b"abcde\nnext\n", lambda s: s.readline(limit=5), "LimitOverrun", b"next\n"),
    # a separator that starts within the limit but ends past it is accepted.
    (b"abcd\r\nnext\n", lambda s: s.readuntil(b"\r\n", limit=5), b"abcd\r\n", b"next\n"),
    # one that starts just past the limit is not, and readuntil leaves the buffer alone.
    (b"abcd\r\nnext\n", lambda s: s.readuntil(b"\r\n", limit=4), "LimitOverrun", b"abcd\r\n"),
], ids=["newline-at-limit", "newline-past-limit", "separator-straddles-limit",
        "separator-past-limit"])
def test_limit_edges(sched, socketpair, data, call, expected, then):
    a, b = socketpair
    b.sendall(data)
    assert reads(sched, pyos.Socket(a), call, pyos.Socket.readline) == [expected, then]


def test_readline_overrun_without_newline_discards_the_whole_buffer(sched, socketpair):
    a, b = socketpair
    stream, record = pyos.Socket(a), []
    b.sendall(b"abcdefgh")

    def reader():
        try:
            yield stream.readline(limit=4)
        except pyos.LimitOverrun as exc:
            record.append(isinstance(exc, ValueError))
        b.sendall(b"xy\n")
        record.append((yield stream.readline(limit=4)))

    run_watched(sched, reader())
    assert record == [True, b"xy\n"]


def test_a_separator_split_across_reads_at_the_limit_is_found(sched, socketpair):
    """b"\\r" is the 5th byte of the first read, b"\\n" arrives later: still within limit 5."""
    a, b = socketpair
    stream, record = pyos.Socket(a), []
    b.sendall(b"abcd\r")

    def reader():
        record.append((yield stream.readuntil(b"\r\n", limit=5)))

    def writer():
        for _ in range(3):
            yield
        b.sendall(b"\nz")

    run_watched(sched, reader(), writer())
    assert record == [b"abcd\r\n"]


def test_readexactly(sched, socketpair):
    """0 -> b"", a negative count -> ValueError, n across reads, then IncompleteRead at EOF."""
    a, b = socketpair
    stream, record = pyos.Socket(a), []

    def reader():
        record.append((yield stream.readexactly(0)))
        try:
            yield stream.readexactly(-1)
        except ValueError:
            record.append("ValueError")
        record.append((yield stream.readexactly(6)))
        try:
            yield stream.readexactly(5)
        except pyos.IncompleteRead as exc:
            record.append((exc.partial, exc.expected, isinstance(exc, EOFError)))

    def writer():
        for chunk in (b"abc", b"def", b"ghi"):
            b.sendall(chunk)
            yield
        b.shutdown(socket.SHUT_WR)

    run_watched(sched, reader(), writer())
    assert record == [b"", "ValueError", b"abcdef", (b"ghi", 5, True)]


def test_read_to_eof_and_read_some(sched, socketpair):
    """read(n) returns buffered bytes first (at most n); read() reads to end of stream."""
    a, b = socketpair
    stream, record = pyos.Socket(a), []

    def reader():
        record.append((yield stream.readline()))
        record.append((yield stream.read(2)))
        record.append((yield stream.read()))
        record.append((yield stream.read(10)))

    def writer():
        for chunk in (b"head\nxyz", b"1", b"2", b"3"):
            b.sendall(chunk)
            yield
        b.shutdown(socket.SHUT_WR)

    run_watched(sched, reader(), writer())
    assert record == [b"head\n", b"xy", b"z123", b""]


def test_write_a_megabyte_through_small_buffers(sched, socketpair):
    a, b = socketpair
    for sock, option in ((a, socket.SO_SNDBUF), (b, socket.SO_RCVBUF)):
        sock.setsockopt(socket.SOL_SOCKET, option, 4096)
    payload = os.urandom(1 << 20)
    writer_stream, reader_stream, received = pyos.Socket(a), pyos.Socket(b), []

    def writer():
        yield writer_stream.write(payload)
        writer_stream.shutdown()

    def reader():
        received.append((yield reader_stream.read()))

    run_watched(sched, writer(), reader())
    assert len(received[0]) == len(payload)
    assert received[0] == payload


def test_async_for_over_lines(sched, socketpair):
    a, b = socketpair
    stream, lines = pyos.Socket(a), []
    b.sendall(b"alpha\nbeta\ngamma")
    b.shutdown(socket.SHUT_WR)

    async def reader():
        async for line in stream:
            lines.append(line)
        lines.append(await stream.readline())

    run_watched(sched, reader())
    assert lines == [b"alpha\n", b"beta\n", b"gamma", b""]


def test_recv_after_readline_returns_buffered_bytes_first(sched, socketpair):
    a, b = socketpair
    stream, record = pyos.Socket(a), []
    b.sendall(b"line\nrest")

    def reader():
        record.append((yield stream.readline()))
        record.append((yield stream.recv(2)))
        record.append((yield stream.recv(100)))
        b.sendall(b"more")
        record.append((yield stream.recv(100)))

    run_watched(sched, reader())
    assert record == [b"line\n", b"re", b"st", b"more"]


def test_a_second_reader_is_busy_even_when_the_buffer_has_data(sched, socketpair):
    """Task A parks in readline with b"par" buffered; B's reads must not take those bytes."""
    a, b = socketpair
    stream, record = pyos.Socket(a), []
    b.sendall(b"par")

    def first():
        record.append((yield stream.readline()))

    def second():
        for read in (stream.readexactly(2), stream.recv(2), stream.readline()):
            try:
                yield read
            except pyos.ResourceBusy:
                record.append("busy")
        b.sendall(b"tial\nnext\n")

    def third():
        for _ in range(20):
            yield
        record.append((yield stream.readline()))   # A has finished: the stream is free

    run_watched(sched, first(), second(), third())
    assert record == ["busy", "busy", "busy", b"partial\n", b"next\n"]


@pytest.mark.parametrize(("read", "expected"), [
    (lambda s: s.readline(), b"hello, w\n"),
    (lambda s: s.readexactly(8), b"hello, w"),
    (lambda s: s.readuntil(b"\n"), b"hello, w\n"),
    (lambda s: s.read(), b"hello, w\n"),
], ids=["readline", "readexactly", "readuntil", "read-to-eof"])
def test_an_interrupted_read_keeps_what_it_had_read(sched, socketpair, read, expected):
    """An exception thrown in at the read's wait leaves the bytes in the buffer, unclaimed."""
    a, b = socketpair
    stream = pyos.Socket(a)
    b.sendall(b"hel")
    pending = read(stream)
    wait = pending.send(None)             # reads b"hel", then has to wait for more
    assert isinstance(wait, pyos.ReadWait)
    with pytest.raises(TimeoutError):
        pending.throw(TimeoutError())
    b.sendall(b"lo, w\n")
    b.shutdown(socket.SHUT_WR)
    assert reads(sched, stream, read) == [expected]


class PipeReader(BufferedStream):
    """The read end of a non-blocking pipe: a second stream over the same layer."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        os.set_blocking(fd, False)
        self.fd = fd

    @types.coroutine
    def _read_some(self, size: int):
        while True:
            try:
                return os.read(self.fd, size)
            except BlockingIOError:
                yield pyos.ReadWait(self.fd)


def test_the_stream_layer_works_over_a_pipe(sched):
    r, w = os.pipe()
    stream, lines = PipeReader(r), []

    def writer():
        for chunk in (b"from a ", b"pipe\nand", b" more\n"):
            os.write(w, chunk)
            yield
        os.close(w)

    async def reader():
        async for line in stream:
            lines.append(line)

    try:
        run_watched(sched, writer(), reader())
    finally:
        os.close(r)
    assert lines == [b"from a pipe\n", b"and more\n"]
