"""Non-blocking pipes as line streams: a child process's stdin, stdout and stderr.

``PipeStream`` supplies the two primitives of ``BufferedStream`` (streams.py) over
``os.read`` and ``os.write`` on a non-blocking descriptor, waiting with ReadWait and
WriteWait, so a pipe has every stream method a Socket has: ``readline``, ``readuntil``,
``readexactly``, ``read``, ``write`` and ``async for``.

A pipe that reaches end of stream closes itself at once: nothing more can come, and a
program that runs many processes must not collect their descriptors until the kernel
stops.  Reads after that keep returning b"", as at end of stream.  ``close()`` works as
a Socket's does: it closes now, and yielding its result also tells the kernel, so a task
still waiting on the pipe fails with EBADF at once.
"""

from __future__ import annotations

import errno
import os
import types
from collections.abc import Callable, Generator
from typing import Any

from .streams import BufferedStream
from .syscalls import NotifyClosed, ReadWait, SystemCall, WriteWait

__all__ = ["PipeStream"]

Op = Generator[Any, Any, Any]


class PipeStream(BufferedStream):
    """One end of a pipe (a file object or descriptor it now owns), as a line stream."""

    def __init__(self, pipe: Any, name: str = "pipe",
                 on_close: Callable[[PipeStream], None] | None = None) -> None:
        super().__init__()
        self._file = pipe if not isinstance(pipe, int) else None
        self._fd = pipe if isinstance(pipe, int) else pipe.fileno()
        os.set_blocking(self._fd, False)
        self.name = name
        self._eof = False                  # closed at end of stream: reads give b""
        self._broken = False               # closed as the reader went: writes give EPIPE
        self._on_close = on_close          # the owner's hook (a process forgets its pipes)
        self._wait_read = ReadWait(self)   # made once: waiting allocates nothing
        self._wait_write = WriteWait(self)

    def __repr__(self) -> str:
        state = f"fd={self._fd}" if self._fd >= 0 else "closed"
        return f"<pyos.PipeStream {self.name} {state}>"

    def __enter__(self) -> PipeStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def fileno(self) -> int:
        """The descriptor, or -1 once closed (as a socket's)."""
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self, broken: bool = False) -> SystemCall:
        """Close the pipe now.  Yield (or await) the result to tell the kernel too.

        ``broken``: the other end is gone (the child exited), so a later write raises
        BrokenPipeError, as it would have on the open pipe, rather than EBADF.
        """
        self._broken = self._broken or broken
        fd, self._fd = self._fd, -1
        if fd >= 0:
            if self._file is not None:
                self._file.close()
            else:
                os.close(fd)
            if self._on_close is not None:
                self._on_close(self)
        return NotifyClosed(fd)

    @types.coroutine
    def _read_some(self, size: int) -> Op:
        while True:
            if self._fd < 0:
                if self._eof:
                    return b""
                raise OSError(errno.EBADF, f"read from {self!r}")
            try:
                data = os.read(self._fd, size)
            except BlockingIOError:
                yield self._wait_read
            else:
                if not data:
                    self._eof = True
                    self.close()           # end of stream: the descriptor goes now
                return data

    @types.coroutine
    def _write_all(self, data: bytes | bytearray | memoryview) -> Op:
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while sent < len(octets):
                if self._fd < 0:
                    if self._broken:
                        raise BrokenPipeError(errno.EPIPE, f"{self.name}: the reader is gone")
                    raise OSError(errno.EBADF, f"write to {self!r}")
                try:
                    sent += os.write(self._fd, octets[sent:])
                except BlockingIOError:
                    yield self._wait_write
