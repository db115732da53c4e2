"""Line streams: readline, readuntil, readexactly, read and write over any byte source.

``BufferedStream`` holds a read buffer and builds every stream read on two primitives
that a subclass provides, each a sub-coroutine over ReadWait/WriteWait:

* ``_read_some(size)``: return at most ``size`` new bytes, waiting until there is at
  least one; ``b""`` means end of stream;
* ``_write_all(data)``: send all of data, waiting whenever the other side is full.

``Socket`` is one such subclass; a non-blocking pipe is another (``os.read`` instead of
``recv``), so process pipes get the same API without a line of this module changing.

Cancel safety is the one rule this module is built around: received bytes go into
``self._rbuf`` the moment ``_read_some`` returns them, before anything else can yield,
so a read that is interrupted at its wait (a timeout, a cancel, a kill) leaves everything
it had read in the buffer, and the next read starts from there.  And one reader at a
time: a read in progress (possibly parked at a wait, with a partial line in the buffer)
makes any other read of the stream raise ``ResourceBusy``, as the poller does for two
tasks waiting on one descriptor; otherwise the second reader could take bytes from the
middle of the first one's line.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from .errors import IncompleteRead, LimitOverrun, ResourceBusy

__all__ = ["DEFAULT_LIMIT", "BufferedStream"]

Op = Generator[Any, Any, Any]

#: The longest line (or readuntil chunk) a read accepts unless told otherwise, as asyncio.
DEFAULT_LIMIT = 65536


class BufferedStream:
    """Buffered reads and whole writes over a subclass's ``_read_some`` and ``_write_all``.

    Every method that may block is a ``types.coroutine`` generator, so it works with
    ``yield``, ``yield from`` and ``await`` alike; ``async for line in stream`` reads lines
    to the end of the stream.
    """

    #: How many bytes one refill of the buffer asks for.
    CHUNK = 65536

    def __init__(self) -> None:
        self._rbuf = bytearray()
        self._reading = False  # a stream read is in progress (perhaps parked at a wait)

    # -- What a subclass provides -----------------------------------------------------
    def _read_some(self, size: int) -> Op:
        """Return up to size new bytes, waiting for at least one; b"" at end of stream."""
        raise NotImplementedError

    def _write_all(self, data: bytes | bytearray | memoryview) -> Op:
        """Write all of data, waiting whenever there is no room."""
        raise NotImplementedError

    # -- Writing ----------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> Op:
        """Write all of data: ``yield stream.write(data)``.

        Returns the subclass's sub-coroutine itself rather than wrapping it, so a write
        costs no extra generator frame.
        """
        return self._write_all(data)

    # -- Reading ----------------------------------------------------------------------
    @types.coroutine
    def readline(self, limit: int = DEFAULT_LIMIT) -> Op:
        """Read one line, ending with b"\\n"; the partial line at end of stream; b"" at EOF.

        The newline must be among the first ``limit`` bytes.  If it is not, the line is
        too long to use: it is discarded through the next newline in the buffer (or the
        whole buffer if there is none, the rest of the line then arriving as the next
        read's data, as in asyncio) and ``LimitOverrun`` is raised.
        """
        self._claim()
        try:
            end = yield from self._find(b"\n", limit)
            if end is None:                      # end of stream: whatever is left
                return self._take(len(self._rbuf))
            if end < 0:
                newline = self._rbuf.find(b"\n", limit)
                del self._rbuf[:newline + 1 if newline >= 0 else len(self._rbuf)]
                raise LimitOverrun(f"no newline within {limit} bytes: line discarded")
            return self._take(end)
        finally:
            self._reading = False

    @types.coroutine
    def readuntil(self, separator: bytes = b"\n", limit: int = DEFAULT_LIMIT) -> Op:
        """Read up to and including separator, which must start within ``limit`` bytes.

        Past the limit ``LimitOverrun`` is raised and the buffer is left as it was (the
        caller may read it some other way); at end of stream ``IncompleteRead`` is raised
        with the bytes left over as ``partial`` and ``expected=None``.
        """
        separator = bytes(separator)
        if not separator:
            raise ValueError("readuntil() needs a non-empty separator")
        self._claim()
        try:
            end = yield from self._find(separator, limit)
            if end is None:
                raise IncompleteRead(self._take(len(self._rbuf)), None)
            if end < 0:
                raise LimitOverrun(f"separator {separator!r} not found within {limit} bytes")
            return self._take(end)
        finally:
            self._reading = False

    @types.coroutine
    def readexactly(self, n: int) -> Op:
        """Read exactly n bytes; ``IncompleteRead`` (with what came) if the stream ends first."""
        if n < 0:
            raise ValueError(f"readexactly() needs a count >= 0, not {n}")
        if n == 0:
            return b""
        self._claim()
        try:
            while len(self._rbuf) < n:
                if not (yield from self._fill()):
                    raise IncompleteRead(self._take(len(self._rbuf)), n)
            return self._take(n)
        finally:
            self._reading = False

    @types.coroutine
    def read(self, n: int = -1) -> Op:
        """Read up to n bytes (buffered ones first, else one read's worth); n < 0: to EOF.

        b"" means end of stream (or n == 0).
        """
        if n == 0:
            return b""
        self._claim()
        try:
            if n < 0:
                while (yield from self._fill()):
                    pass
                return self._take(len(self._rbuf))
            if not self._rbuf:
                yield from self._fill()
            return self._take(min(n, len(self._rbuf)))
        finally:
            self._reading = False

    def __aiter__(self) -> BufferedStream:
        return self

    async def __anext__(self) -> bytes:
        """``async for line in stream``: each line, until end of stream."""
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- The buffer -------------------------------------------------------------------
    def _claim(self) -> None:
        """Mark a read in progress, or refuse if one already is."""
        if self._reading:
            raise ResourceBusy(f"{self!r} is already being read by another task")
        self._reading = True

    def _fill(self) -> Op:
        """Append one read's worth to the buffer; return its size (0 at end of stream).

        The bytes go into the buffer before this frame can yield again: what was read
        survives an exception thrown in at the next wait.
        """
        data = yield from self._read_some(self.CHUNK)
        self._rbuf += data
        return len(data)

    def _take(self, n: int) -> bytes:
        """Remove the first n bytes of the buffer and return them."""
        data = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return data

    def _take_buffered(self, size: int) -> bytes:
        """What ``recv(size)`` returns when the buffer holds something: those bytes first."""
        if self._reading:
            raise ResourceBusy(f"{self!r} is already being read by another task")
        return self._take(size)

    def _find(self, separator: bytes, limit: int) -> Op:
        """Fill the buffer until it holds separator starting within limit bytes.

        Returns the index just past the separator; -1 if it cannot start within the limit
        (the buffer holds limit bytes and more with none starting there); None at end of
        stream without one.  Each search starts where the last one left off, so a line
        that arrives a byte at a time costs linear time, not quadratic.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        width = len(separator)
        window = limit + width - 1   # a separator starting at limit - 1 ends here
        start = 0
        while True:
            found = self._rbuf.find(separator, start, window)
            if found >= 0:
                return found + width
            if len(self._rbuf) >= window:
                return -1
            start = max(0, len(self._rbuf) - width + 1)
            if not (yield from self._fill()):
                return None
