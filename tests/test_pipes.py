"""PipeStream (pyos/pipes.py): a non-blocking pipe as a line stream, on both pollers.

Process pipes are tested with real children in test_process.py; here the pipe is a
plain os.pipe(), so each rule is seen alone: end of stream closes the pipe, a closed
pipe refuses, and a write to a pipe whose reader is gone is a BrokenPipeError.
"""

from __future__ import annotations

import errno
import os

import pytest
from helpers import run_watched

import pyos


@pytest.fixture
def pipe():
    """(reader, writer) PipeStreams over one os.pipe(); whatever is left open is closed."""
    r, w = os.pipe()
    reader, writer = pyos.PipeStream(r, "reader"), pyos.PipeStream(w, "writer")
    yield reader, writer
    reader.close()
    writer.close()


def test_a_pipe_is_a_line_stream_that_closes_at_end_of_stream(sched, pipe) -> None:
    reader, writer = pipe
    fds, record = len(os.listdir("/proc/self/fd")), []

    def write():
        for chunk in (b"line one\nline", b" two\n", b"tail"):
            yield writer.write(chunk)
            yield
        yield writer.close()

    async def read():
        record.extend([line async for line in reader])
        record.append((reader.closed, await reader.read(), await reader.readline()))

    run_watched(sched, read(), write())
    assert record == [b"line one\n", b"line two\n", b"tail", (True, b"", b"")]
    assert len(os.listdir("/proc/self/fd")) == fds - 2
    assert repr(reader) == "<pyos.PipeStream reader closed>"


def test_a_closed_pipe_refuses_and_a_broken_one_says_so(sched, pipe) -> None:
    reader, writer = pipe
    record = []

    def main():
        reader.close()
        writer.close(broken=True)        # as a process's stdin is once the child is reaped
        for stream, op in ((reader, reader.read(1)), (writer, writer.write(b"x"))):
            try:
                yield op
            except OSError as exc:
                record.append((stream.name, type(exc).__name__, errno.errorcode[exc.errno]))

    run_watched(sched, main())
    assert record == [("reader", "OSError", "EBADF"), ("writer", "BrokenPipeError", "EPIPE")]


def test_a_write_waits_for_room_while_others_run(sched, pipe) -> None:
    """Half a megabyte through a pipe whose buffer holds 64 KiB: the writer must wait."""
    reader, writer = pipe
    data = os.urandom(1 << 19)
    got = []

    def write():
        yield writer.write(data)
        yield writer.close()

    def read():
        got.append((yield reader.read()))

    run_watched(sched, write(), read())
    assert got == [data]
