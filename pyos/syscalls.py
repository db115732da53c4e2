"""System calls: the only way a task talks to the kernel.

A task yields (or awaits) a ``SystemCall``; the kernel sets ``call.task`` and
``call.sched`` and calls ``call.handle()``.  That is Beazley's protocol, and a
user-defined call in his form keeps working::

    class GetTidTwice(SystemCall):
        def handle(self):
            self.task.sendval = 2 * self.task.tid
            self.sched.schedule(self.task)

A handler either makes the task ready again (``sched.schedule``), and the value in
``task.sendval`` is what its ``yield`` evaluates to, or hands the task to something that
will wake it later: a timer, a descriptor, another task's exit.  An exception raised by
``handle()`` is thrown into the task at its yield, so bad arguments fail where they were
made.  Each call below is a few lines over one kernel method.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .task import COROUTINE_TYPES, check_target

if TYPE_CHECKING:  # pragma: no cover - only for the type checker
    from .scheduler import Scheduler
    from .task import Task

__all__ = [
    "CancelTask", "GetTid", "KillTask", "NewTask", "NotifyClosed", "Ps", "ReadWait", "Sleep",
    "SystemCall", "WAIT", "WaitTask", "WriteWait", "check_seconds", "fileno",
]

#: What a call's fast half returns when its caller has to wait (see SystemCall.fast).
WAIT: Any = object()


class SystemCall:
    """Base class of everything a task may yield to the kernel."""

    # Slots, so that a subclass that declares its own is a small object (a subclass that
    # does not, as in Beazley's protocol, still has a __dict__ for its arguments).
    __slots__ = ("sched", "task")
    task: Task
    sched: Scheduler
    #: The optional fast half of the protocol, for calls that mostly complete at once
    #: (fastpath.py's Op: a get, a put, an acquire).  ``fast(tid)`` returns the result
    #: (or ``value`` stands for it when not None), or WAIT; only then does the kernel
    #: set ``task``/``sched`` and ask ``park_in(task)`` for a WaitQueue to park the task
    #: in, or else ``call_slow()``.  None: handle() is all there is.
    fast: Any = None

    def handle(self) -> None:
        """Carry out the call for ``self.task``; see the module docstring."""
        raise NotImplementedError(f"{type(self).__name__} does not define handle()")

    def __await__(self) -> Generator[Any, Any, Any]:
        """Lets ``async def`` tasks write ``tid = await GetTid()``."""
        return (yield self)

    def __repr__(self) -> str:
        args = ", ".join(_short(v) for k, v in getattr(self, "__dict__", {}).items()
                         if k not in ("task", "sched", "file", "armed"))
        return f"{type(self).__name__}({args})"


def _short(value: object) -> str:
    """An argument as a trace line shows it: a coroutine by name, anything else cut short."""
    if isinstance(value, COROUTINE_TYPES):
        return f"{value.__qualname__}()"
    return reprlib.repr(value)


class GetTid(SystemCall):
    """Returns the calling task's id."""

    def handle(self) -> None:
        self.task.sendval = self.task.tid
        self.sched.schedule(self.task)


class NewTask(SystemCall):
    """Starts target (a generator or coroutine object) as a new task; returns its id."""

    def __init__(self, target: Any, name: str | None = None) -> None:
        check_target(target)
        self.target = target
        self.name = name

    def handle(self) -> None:
        self.task.sendval = self.sched.new(self.target, self.name)
        self.sched.schedule(self.task)


class KillTask(SystemCall):
    """Unwinds task tid; returns True, or False if there is no such running task."""

    def __init__(self, tid: int) -> None:
        self.tid = tid

    def handle(self) -> None:
        self.task.sendval = self.sched.kill(self.tid)
        if not self.task.done:  # a task may kill itself
            self.sched.schedule(self.task)


class CancelTask(SystemCall):
    """Cancels task tid: ``Cancelled`` is raised in it at its next blocking point.

    Returns True at once (the caller may then ``WaitTask(tid)``), or False if there is
    no such running task.  Unlike KillTask, the task can catch it and clean up.
    """

    def __init__(self, tid: int) -> None:
        self.tid = tid

    def handle(self) -> None:
        self.task.sendval = self.sched.cancel(self.tid)
        self.sched.schedule(self.task)


class WaitTask(SystemCall):
    """Waits for task tid to exit and returns its return value.

    Raises ``TaskError`` (chained to the cause) if it failed, ``TaskKilled`` if it was
    killed, ``TaskCancelled`` if a Cancelled ended it, ``NoSuchTask`` for an id never
    issued, ``OutcomeForgotten`` for an outcome already collected or no longer kept, and
    RuntimeError for the caller's own id.
    """

    def __init__(self, tid: int) -> None:
        self.tid = tid

    def handle(self) -> None:
        self.sched.join(self.task, self.tid)


class Sleep(SystemCall):
    """Resumes the task after at least ``seconds`` while others run; returns None."""

    def __init__(self, seconds: float) -> None:
        self.seconds = check_seconds(seconds, "Sleep()")

    def handle(self) -> None:
        self.sched.sleep(self.task, self.seconds)


def check_seconds(seconds: Any, what: str) -> float:
    """seconds, checked where the call is made: a number, not a bool, not NaN, >= 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} takes a number of seconds, not {seconds!r}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"{what} takes a number of seconds >= 0, not {seconds!r}")
    return seconds


def fileno(f: Any) -> int:
    """The descriptor behind f (an int, or anything with ``fileno()``), checked."""
    fd = f if isinstance(f, int) else f.fileno()
    if not isinstance(fd, int) or isinstance(fd, bool) or fd < 0:
        raise ValueError(f"cannot wait on {f!r}: it has no open descriptor (closed?)")
    return fd


class _IOWait(SystemCall):
    """Blocks until f (an int descriptor, or anything with ``fileno()``) is ready.

    The call is its own wait object (see waits.py): it can undo itself and say what it
    is, and a socket makes its two once, so waiting allocates nothing.
    """

    event = ""  # "read" or "write": all a subclass says
    cancellable = True
    external = False
    blocker = None
    #: The poller that keeps this very wait's file registered across waits (epoll), else
    #: None; that poller clears it whenever the registration changes.  With the file still
    #: open under fd, waiting again needs no poller call: the run loop's fast path.
    armed: Any = None

    def __init__(self, f: Any) -> None:
        self.fd = fileno(f)
        self.file = f

    def handle(self) -> None:
        self.sched.wait_io(self.task, self)

    def cancel(self, kernel: Any, task: Task) -> None:
        kernel._poller.cancel(self.fd, self.event, task)

    def describe(self, now: float) -> str:
        return f"waiting to {self.event} fd {self.fd}"


class ReadWait(_IOWait):
    """Blocks until f (an int descriptor, or anything with ``fileno()``) is readable."""

    event = "read"


class WriteWait(_IOWait):
    """Blocks until f (an int descriptor, or anything with ``fileno()``) is writable."""

    event = "write"


class NotifyClosed(SystemCall):
    """Tells the kernel descriptor fd was closed: tasks waiting on it get OSError(EBADF).

    Without it the kernel still notices, but only when it next finds nothing else to do.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def handle(self) -> None:
        self.sched.notify_closed(self.fd)
        self.sched.schedule(self.task)


class Ps(SystemCall):
    """Returns a list of ``TaskInfo`` records, one per task: see ``Scheduler.ps()``."""

    def handle(self) -> None:
        self.task.sendval = self.sched.ps(caller=self.task)
        self.sched.schedule(self.task)
