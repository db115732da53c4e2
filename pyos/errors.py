"""Exceptions that pyos raises, in one place so that every other module can import them.

Each names what went wrong in the terms of the program that hit it: which task, which
descriptor, which wait.  Nothing here imports the rest of pyos.
"""

from __future__ import annotations

__all__ = [
    "BrokenLock", "Cancelled", "Deadlock", "IncompleteRead", "LimitOverrun", "NoSuchTask",
    "OutcomeForgotten", "PyosError", "QueueEmpty", "QueueFull", "QueueShutDown", "ResourceBusy",
    "TaskCancelled", "TaskError", "TaskKilled", "TaskTimeout",
]


class PyosError(Exception):
    """Base class of every error pyos itself raises."""


class Deadlock(PyosError, RuntimeError):
    """Tasks remain but none can ever run again: nothing is ready, no timer, no I/O wait.

    Raised by ``Scheduler.mainloop()``.  The message names each blocked task, what it
    waits for and where, and the cycle in the wait-for graph when there is one.
    """


class TaskError(PyosError):
    """The task you waited for failed.  Its own exception is ``__cause__``.

    Wrapping (rather than re-raising the child's exception as is) keeps "the task I
    waited for failed" apart from "my wait itself failed", and lets several waiters
    receive the same failure without sharing one traceback.
    """

    def __init__(self, message: str, tid: int, name: str) -> None:
        super().__init__(message)
        self.tid = tid
        self.name = name


class TaskKilled(TaskError):
    """The task you waited for was killed by ``KillTask`` before it could finish."""


class TaskCancelled(TaskError):
    """The task you waited for ended because a ``Cancelled`` escaped it (it did not fail)."""


class Cancelled(BaseException):
    """Thrown into a task at a blocking point when it is cancelled (CancelTask, a timeout).

    A BaseException, like asyncio's CancelledError, so that ``except Exception`` in user
    code does not swallow it by accident.  It can be caught, and clean-up after catching
    it may block: it is delivered once.  ``scope`` is the timeout scope whose deadline
    raised it, or None for a CancelTask.
    """

    def __init__(self, *args: object, scope: object = None) -> None:
        super().__init__(*args)
        self.scope = scope


class TaskTimeout(PyosError, TimeoutError):
    """A ``timeout_after`` deadline passed.  ``__cause__`` is the Cancelled it raised."""


class NoSuchTask(PyosError, LookupError):
    """``WaitTask`` named a task id this scheduler never created."""


class OutcomeForgotten(PyosError, LookupError):
    """``WaitTask`` asked for an outcome the kernel no longer keeps.

    An outcome is kept until a WaitTask collects it, and at most ``keep_results`` of them
    (oldest forgotten first): pyos cannot tell a result it dropped from a ``None``.
    """


class ResourceBusy(PyosError):
    """A second task tried to wait for the same event on the same descriptor.

    Only one task may wait to read (and one to write) a descriptor at a time; a second
    one would otherwise silently replace the first, whose wait would then never end.
    """


class IncompleteRead(PyosError, EOFError):
    """The stream ended before a read could be satisfied.

    Raised by ``readexactly(n)`` (``expected`` is n) and by ``readuntil(sep)`` (``expected``
    is None: no length was asked for, only a separator).  ``partial`` holds the bytes that
    did arrive, which the stream no longer has: they are handed over here, not lost.  An
    ``EOFError`` too, so code that already catches end-of-file keeps working.
    """

    def __init__(self, partial: bytes, expected: int | None) -> None:
        wanted = "a separator" if expected is None else f"{expected} bytes"
        super().__init__(f"stream ended after {len(partial)} bytes, expecting {wanted}")
        self.partial = partial
        self.expected = expected


class LimitOverrun(PyosError, ValueError):
    """A line (or a ``readuntil`` chunk) did not end within the limit the reader set.

    The limit keeps one peer from growing the buffer without bound by never sending a
    newline.  A ``ValueError`` too, as the input itself is what was wrong.
    """


class BrokenLock(PyosError):
    """The task that held this lock ended still holding it (returned, failed, was cancelled
    or killed).  Whatever it protected may be half-updated, so its waiters and every later
    acquirer get this error instead of the lock, or of a silent hang.
    """


class QueueEmpty(PyosError):
    """``get_nowait()`` found the queue empty."""


class QueueFull(PyosError):
    """``put_nowait()`` found no free slot in a bounded queue (or a waiting putter had it)."""


class QueueShutDown(PyosError):
    """The queue was shut down: no more puts, and no more gets once it is empty."""
