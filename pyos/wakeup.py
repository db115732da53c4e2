"""The one thread-safe way into a running kernel: a queue of calls and a self-pipe.

Everything in a kernel runs in its thread, so another thread (a worker running a
blocking function, the monitor console) or a signal handler may only *ask*: it appends
``(fn, args)`` to a deque (atomic in CPython) and writes a byte to a pipe.  The poller
watches the pipe's read end, so a kernel blocked in a poll wakes at once; it drains the
pipe, and the kernel runs the calls at the start of its next cycle.  While nobody calls,
this costs the run loop one truth test per cycle and the poller nothing.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Wakeup"]

log = logging.getLogger("pyos")


class Wakeup:
    """Calls queued from any thread, and the pipe that wakes the kernel for them."""

    def __init__(self) -> None:
        self.calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def fileno(self) -> int:
        """The descriptor the poller watches (and drains)."""
        return self._read

    def call_soon(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """From any thread: run fn(*args) in the kernel's thread at its next cycle."""
        if self._write < 0:
            raise RuntimeError("the scheduler is closed: it will run nothing more")
        self.calls.append((fn, args))
        try:
            os.write(self._write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already: the kernel will wake

    def run_calls(self) -> None:
        """In the kernel's thread: run the calls queued so far, each isolated from the rest."""
        calls = self.calls
        for _ in range(len(calls)):   # those queued meanwhile wait for the next cycle
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:
                log.exception("call_soon_threadsafe(%r) raised", fn)

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1
