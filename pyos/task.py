"""A task: one generator or coroutine, plus the stack of sub-coroutines it is calling.

Python runs ``yield from`` and ``await`` chains itself.  pyos adds Beazley's
*trampoline*: when a task yields a generator or coroutine, the kernel pushes it on the
task's stack and runs it instead; when it returns, its value is sent to the frame below,
and when it raises, the exception is thrown there.  Because the stack is a Python list
rather than nested C calls, a task can be 20,000 calls deep without a RecursionError.
The stack is kept as ``coro`` (the innermost frame, the one that runs) and ``callers``
(the frames below it), a list made only once the task first calls a sub-coroutine: most
tasks never do, and a blocked task should cost little memory.

The kernel resumes a task with ``task.coro.send(task.sendval)``.  To make a task's
pending yield raise instead, ``throw()`` pushes a one-shot frame that raises: the
trampoline then throws the exception into the frame below, as it does for any call that
fails, and the kernel's common case stays one attribute lookup and one call.
"""

from __future__ import annotations

import logging
import os
from types import CoroutineType, GeneratorType, TracebackType
from typing import Any

__all__ = ["COROUTINE_TYPES", "FINISHED", "Task", "check_target", "without_kernel_frames"]

log = logging.getLogger("pyos")

# SystemCall.__await__ (in syscalls.py) only relays the call: not where a task "is".
_RELAY = (os.path.join(os.path.dirname(os.path.abspath(__file__)), "syscalls.py"), "__await__")

# Where the kernel catches what a task's frame raised, and passes it on: never the user's.
_HERE = os.path.dirname(os.path.abspath(__file__))
_KERNEL_FILES = frozenset(os.path.join(_HERE, name)
                          for name in ("task.py", "scheduler.py", "trap.py", "kernel.py",
                                       "exits.py"))

#: What a task may run, and what it may yield to call as a sub-coroutine.
COROUTINE_TYPES = (GeneratorType, CoroutineType)


def check_target(target: object) -> None:
    """Raise TypeError, with advice, unless target is a generator or coroutine object."""
    if isinstance(target, COROUTINE_TYPES):
        # Not gi_frame: reading it makes CPython build a frame object (168 bytes) that
        # then stays with every task.  A finished target passes: its task just ends.
        if isinstance(target, GeneratorType):
            started = target.gi_suspended or target.gi_running
        else:
            started = target.cr_suspended or target.cr_running
        if started:  # another task (or a for loop) already drives it
            raise ValueError(f"{target!r} has already started: a task needs a fresh one "
                             "(call the function again)")
        return
    hint = ""
    if callable(target):
        hint = f"; did you mean {getattr(target, '__name__', 'it')}() (call it first)?"
    raise TypeError(f"a task must be a generator or coroutine object, not {target!r}{hint}")


def without_kernel_frames(exc: BaseException) -> BaseException:
    """Drop the kernel's frames from the head of exc's traceback; return exc.

    An exception a frame raises is caught by the kernel (and the kernel's frame joins
    its traceback) before it is thrown into the calling frame or ends the task, so
    without this a task's traceback would open with, and alternate with, kernel frames.
    Only the head is trimmed: frames below the first of the task's own stay, including
    pyos's own where the error was raised (a socket operation, a system call's checks).
    """
    tb: TracebackType | None = exc.__traceback__
    head = tb
    while tb is not None and tb.tb_frame.f_code.co_filename in _KERNEL_FILES:
        tb = tb.tb_next
    if tb is not head:
        exc.__traceback__ = tb
    return exc


def _suspended(coro: Any) -> bool:
    """Is coro paused at a yield (so closing it did not end it)?"""
    if isinstance(coro, GeneratorType):
        return coro.gi_suspended
    if isinstance(coro, CoroutineType):
        return coro.cr_suspended
    return False


class _Raise:
    """A frame that raises exc when resumed: what ``Task.throw`` pushes on the stack."""

    __slots__ = ("exc", "tb")

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.tb = exc.__traceback__

    def send(self, _value: object) -> Any:
        raise self.exc

    throw = send

    def close(self) -> None:
        pass


class _Finished:
    """What a finished or killed task's stack holds: a stale queue entry stops here."""

    __slots__ = ()

    def send(self, _value: object) -> Any:
        raise StopIteration

    throw = send

    def close(self) -> None:
        pass


_FINISHED = _Finished()
FINISHED = _FINISHED   # what the kernel compares a task's innermost frame with, to see it ended


class Task:
    """One thread of control.  The kernel owns it; user code sees only its id."""

    # Only what every task needs: a blocked task should cost little memory.  Who waits
    # for it (the kernel's _joins), its deadlines and pending cancels live elsewhere.
    __slots__ = ("callers", "coro", "cpu", "name", "runs", "sendval", "tid", "wait")

    #: How deep sub-coroutine calls (``yield sub()``) may nest.  The trampoline needs no
    #: C stack, so only memory bounds it: a runaway recursion would grow it until the
    #: interpreter dies.  Past this depth the call raises RecursionError at its yield,
    #: in that task only.  Far above the 20,000 levels pyos promises; a subclass or an
    #: assignment to ``Task.max_depth`` changes it.
    max_depth = 100_000

    def __init__(self, tid: int, target: Any, name: str | None = None) -> None:
        self.tid = tid  # target was checked by whoever made the task (check_target)
        self.name = name or getattr(target, "__qualname__", type(target).__name__)
        self.coro: Any = target               # the innermost frame: the one that runs
        self.callers: list[Any] | None = None  # the frames below it, outermost first
        self.sendval: Any = None              # what the task's pending yield evaluates to
        self.wait: Any = None                 # what it is blocked on: a wait object (waits.py)
        self.runs = 0                              # how many times it has been resumed
        self.cpu = 0.0                             # seconds spent running it

    def __repr__(self) -> str:
        return f"<Task {self.tid} {self.name!r}>"

    @property
    def done(self) -> bool:
        """Has it ended?  A finished or killed task's stack is only ``_FINISHED``."""
        return self.coro is _FINISHED

    def finish(self) -> None:
        """It has ended: a stale ready-queue entry finds nothing more to run."""
        self.coro, self.callers = _FINISHED, None

    def throw(self, exc: BaseException) -> None:
        """Make the task's pending yield raise exc when it next runs.

        A rare event, so it costs nothing until it happens: a frame that raises exc goes
        on top of the stack, and the trampoline throws exc into the frame below.
        """
        if type(self.coro) is _Raise:   # thrown twice before it ran: the last one wins
            self.coro = _Raise(exc)
        else:
            self._call(_Raise(exc))

    @property
    def pending_error(self) -> BaseException | None:
        """The exception its pending yield will raise, if throw() was called."""
        return self.coro.exc if type(self.coro) is _Raise else None

    @property
    def stack(self) -> list[Any]:
        """Every frame of the trampoline stack, outermost first, innermost last."""
        return [*(self.callers or ()), self.coro]

    def push(self, coro: Any) -> None:
        """Call coro as a sub-coroutine: it runs next, on top of the current frame.

        Beyond ``max_depth`` nested calls, the call raises RecursionError instead.
        """
        if self.callers is not None and len(self.callers) >= self.max_depth:
            coro.close()  # never started: closing only spares a "never awaited" warning
            coro = _Raise(RecursionError(
                f"{self!r} nested sub-coroutine calls more than {self.max_depth} deep "
                "(Task.max_depth): runaway recursion?"))
        self._call(coro)

    def _call(self, coro: Any) -> None:
        if self.callers is None:
            self.callers = []
        self.callers.append(self.coro)
        self.coro = coro
        self.sendval = None

    def advance(self, exc: BaseException) -> Any:
        """The innermost frame ended by raising exc (StopIteration when it returned).

        Hand the outcome to the frame below and run that until it yields something for
        the kernel, which is returned.  When the outermost frame ends, the task is over
        and its final exception is raised: StopIteration carries its return value.
        """
        callers = self.callers
        thrown = type(self.coro) is _Raise   # a pending throw, not a frame that ended
        if thrown:
            exc = exc.with_traceback(self.coro.tb)
        while True:
            if not callers:
                raise exc  # (a stale queue entry sends to the finished frame: harmless)
            self.coro = caller = callers.pop()
            try:
                if type(exc) is StopIteration and not thrown:
                    return caller.send(exc.value)
                return caller.throw(without_kernel_frames(exc))
            except BaseException as error:
                exc, thrown = error, False

    def close(self) -> None:
        """Unwind every frame, innermost first, so that each one's finally blocks run.

        A frame that yields from its finally block (or swallows GeneratorExit) is closed
        again, which abandons that finally block; a few tries end any frame that does not
        loop forever.  Such a frame is told apart from one whose finally block raised a
        RuntimeError of its own by being still suspended afterwards.  Whatever a frame
        raises while closing is logged, never propagated, except a BaseException such as
        KeyboardInterrupt: that is re-raised, but only once every frame has been unwound.
        """
        frames, self.callers = self.stack, None
        interrupt: BaseException | None = None
        for coro in reversed(frames):
            for _attempt in range(3):
                try:
                    coro.close()
                except RuntimeError:
                    if _suspended(coro):
                        continue  # it yielded while closing: throw GeneratorExit in again
                    log.exception("task %d (%s) raised while being unwound", self.tid, self.name)
                except Exception:
                    log.exception("task %d (%s) raised while being unwound", self.tid, self.name)
                except BaseException as exc:  # Ctrl-C, SystemExit: the program's, after this
                    interrupt = interrupt or exc
                break
        self.coro = _FINISHED  # a frame that resisted must never be resumed
        if interrupt is not None:
            raise interrupt

    def frames(self) -> list[tuple[str, int, str]]:
        """Where the task stands: (file, line, function) for every frame, innermost last.

        Follows ``yield from`` and ``await`` chains inside each trampoline frame too.
        """
        where = []
        for coro in self.stack:
            while coro is not None:
                frame = getattr(coro, "gi_frame", None) or getattr(coro, "cr_frame", None)
                if frame is not None:
                    code = frame.f_code
                    if (code.co_filename, code.co_name) != _RELAY:
                        where.append((code.co_filename, frame.f_lineno, code.co_name))
                coro = getattr(coro, "gi_yieldfrom", None) or getattr(coro, "cr_await", None)
                if not isinstance(coro, COROUTINE_TYPES):
                    coro = None
        return where

