"""Signals as something a task waits for: ``SignalWatch``.

A Python signal handler runs in the main thread between two bytecodes, possibly in the
middle of the kernel's own work or while it is blocked in a poll, so it must not touch
the kernel's tables.  The handler a watch installs only *asks*: it hands the signal
number to ``call_soon_threadsafe``, which queues it and writes the kernel's self-pipe
(a blocked poll wakes at once).  At the start of its next cycle, in its own thread, the
kernel delivers it: to the oldest task parked in ``get()``, or into the watch's pending
signals.  Pending signals are kept once each, in order of arrival: a signal that comes
again before it is read is merged, as the operating system itself merges them.

A task parked in ``get()`` waits for the outside world (its wait is ``external``), so it
is never reported as deadlocked, and ``ps`` says "waiting for signal SIGHUP".  A signal
handed to a task is that task's even if a cancel or timeout arrives before it runs; if
the task is killed first, the signal goes back to the front of the pending ones.

Handlers are installed when the kernel handles the watch (the ``yield``, or the
``async with``) and the previous ones are restored when the block ends.  Only the main
thread may install handlers, so a watch in a kernel running elsewhere is a RuntimeError.
A signal watched by two nested watches goes to the inner one while it is open.
"""

from __future__ import annotations

import logging
import signal
import threading
import types
from collections.abc import Generator
from typing import Any

from .syscalls import SystemCall
from .waits import WaitQueue

__all__ = ["SignalWatch"]

log = logging.getLogger("pyos")

_CLOSED = object()   # what getters parked in a watch that closes are woken with


class _SignalQueue(WaitQueue):
    """The tasks parked in one watch's ``get()``: a wait only a signal ends."""

    __slots__ = ("names",)
    external = True   # a task waiting for a signal is not deadlocked

    def __init__(self, names: str) -> None:
        super().__init__()
        self.names = names

    def describe(self, now: float) -> str:
        return f"waiting for signal {self.names}"


class _Get(SystemCall):
    """What ``SignalWatch.get()`` returns: the next pending signal, waiting for one."""

    def __init__(self, watch: SignalWatch) -> None:
        self.watch = watch

    def handle(self) -> None:
        watch = self.watch
        if watch._state != "open":
            raise RuntimeError(f"{watch!r} is not open: get() only inside its block")
        if watch._pending:
            signo = next(iter(watch._pending))
            del watch._pending[signo]
            self.task.sendval = signo
            self.sched.schedule(self.task)
        else:
            self.sched.park(self.task, watch._queue)

    def __repr__(self) -> str:
        return f"{self.watch!r}.get()"


class SignalWatch(SystemCall):
    """Catch signals for the length of a block; ``get()`` waits for the next one.

    ::

        with (yield SignalWatch(signal.SIGHUP, signal.SIGTERM)) as sigs:
            signo = yield sigs.get()          # a signal.Signals

        async with SignalWatch(signal.SIGHUP) as sigs:
            async for signo in sigs:
                ...
    """

    def __init__(self, *signums: int) -> None:
        if not signums:
            raise ValueError("SignalWatch() needs at least one signal to watch")
        self.signals = tuple(dict.fromkeys(signal.Signals(s) for s in signums))
        names = [s.name for s in self.signals]
        self._queue = _SignalQueue(" or ".join(
            names if len(names) < 3 else [", ".join(names[:-1]), names[-1]]))
        self._pending: dict[signal.Signals, None] = {}   # an ordered set, oldest first
        self._previous: dict[signal.Signals, Any] = {}
        self._state = "new"                               # "new", "open", "closed"
        self._sched: Any = None

    def __repr__(self) -> str:
        return f"SignalWatch({', '.join(s.name for s in self.signals)})"

    # -- Entering: the kernel handles the yield ------------------------------------------
    def handle(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"{self!r} was already entered: make a new one each time")
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("SignalWatch works only in a kernel running in the main "
                               "thread: Python runs signal handlers there alone")
        self._sched = self.sched
        try:
            for signo in self.signals:
                self._previous[signo] = signal.signal(signo, self._handler)
        except BaseException:
            self._restore()
            raise
        self._state = "open"
        self.task.sendval = self
        self.sched.schedule(self.task)

    @types.coroutine
    def get(self) -> Generator[Any, Any, signal.Signals]:
        """Wait for the next signal; returns a ``signal.Signals``, oldest pending first."""
        signo = yield _Get(self)
        if signo is _CLOSED:
            raise RuntimeError(f"{self!r} was closed while this task waited in get()")
        return signo  # type: ignore[no-any-return]

    def close(self) -> None:
        """Restore the previous handlers; unread signals are dropped, getters get an error.

        A task still parked in ``get()`` (another task's, since the block's own task is
        here) could never be woken: it gets a RuntimeError rather than wait forever.
        """
        if self._state == "open":
            self._state = "closed"
            self._restore()
            self._pending.clear()
            if len(self._queue):
                self._queue.wake_all(_CLOSED)

    def __enter__(self) -> SignalWatch:
        if self._state != "open":
            raise RuntimeError("enter the watch through the kernel first: "
                               "`with (yield SignalWatch(...)) as sigs:`")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    async def __aenter__(self) -> SignalWatch:
        return await self  # type: ignore[no-any-return]

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()

    def __aiter__(self) -> SignalWatch:
        return self

    def __anext__(self) -> Any:
        return self.get()   # awaitable: never ends, leave the loop with break

    # -- Delivery ------------------------------------------------------------------------
    def _handler(self, signum: int, frame: Any) -> None:
        """Python's handler, in the main thread between bytecodes: only ask the kernel."""
        try:
            self._sched.call_soon_threadsafe(self._deliver, signum)
        except Exception:  # the kernel is closed: nobody is left to tell (never raise here)
            pass

    def _deliver(self, signum: int) -> None:
        """In the kernel's thread, at its next cycle: wake a getter, or keep it pending."""
        if self._state == "open":           # else it arrived as the block ended: dropped
            self._offer(signal.Signals(signum), front=False)

    def _give_back(self, signo: signal.Signals) -> None:
        """The task it was handed to was killed before it ran: the next getter has it."""
        if self._state == "open":
            self._offer(signo, front=True)

    def _offer(self, signo: signal.Signals, front: bool) -> None:
        if not self._pending and self._queue.hand(signo, self._give_back):
            return                          # a parked getter owns it now
        if front:                           # it was read first: it goes first again
            self._pending.pop(signo, None)
            self._pending = {signo: None, **self._pending}
        else:                               # merged with the same one not yet read
            self._pending[signo] = None

    def _restore(self) -> None:
        for signo, previous in reversed(self._previous.items()):
            try:  # None: set outside Python, nothing to restore but the default
                signal.signal(signo, signal.SIG_DFL if previous is None else previous)
            except (OSError, ValueError):
                log.exception("could not restore the handler of %s", signo.name)
        self._previous.clear()
