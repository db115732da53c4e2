"""Timeouts: a deadline on any blocking operation, or on a block of them.

``timeout_after(5, op)`` runs op in the calling task and raises ``TaskTimeout`` if it
has not finished in 5 seconds; ``ignore_after`` returns a default instead.  With no op
they give a *scope*, a deadline over a whole block::

    with (yield timeout_after(5)) as scope:      # a generator task
        ...
    async with timeout_after(5) as scope:        # an async task
        ...

The deadline is fixed when the scope is entered: by the kernel, when it handles the
scope (the ``yield``, or the ``async with``), or, in the op form, by ``_run`` itself with
the same plain call, since entering never blocks.  When it passes, the kernel cancels
the task (cancel.py): a ``Cancelled`` whose ``scope`` is the outermost expired scope is
thrown at the task's blocking point, and that scope's ``__exit__`` turns it into a
TaskTimeout, or swallows it for ``ignore_after``.  Inner scopes let it pass; so does
every scope for a Cancelled sent by CancelTask.  This is library code: it yields system
calls, and makes plain calls that never block (entering and leaving a scope).
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from .errors import Cancelled, TaskTimeout
from .runtime import _local
from .syscalls import SystemCall, check_seconds
from .task import COROUTINE_TYPES

__all__ = ["TimeoutScope", "ignore_after", "timeout_after"]

_NUMBERS = (int, float)   # exactly these (not bool) pass TimeoutScope's quick check
_INF = float("inf")


class TimeoutScope(SystemCall):
    """A deadline over a block of code.  Yield (or ``async with``) it to enter it."""

    __slots__ = ("_kernel", "_owner", "_state", "deadline", "expired", "ignore", "seconds")

    def __init__(self, seconds: float | None, ignore: bool) -> None:
        if seconds is not None and (seconds.__class__ not in _NUMBERS or not seconds >= 0):
            check_seconds(seconds, "a timeout")   # (the common case is tested inline)
        self.seconds = seconds
        self.ignore = ignore
        self.expired = False          # True once this scope's deadline raised a Cancelled
        self.deadline = _INF          # fixed on entry
        self._state = "new"           # "new", "entered", "exited"
        # _kernel and _owner are set on entry, and read only after it: a server may make
        # a scope per read, so what __init__ need not do, it does not.

    def __repr__(self) -> str:
        kind = "ignore_after" if self.ignore else "timeout_after"
        return f"{kind}({self.seconds})"

    # Entering: the kernel handles the yield (or _run makes the same plain call).
    def handle(self) -> None:
        self._enter(self.sched, self.task)
        self.task.sendval = self
        self.sched.schedule(self.task)

    def _enter(self, kernel: Any, task: Any) -> None:
        """Fix the deadline now, on task: a plain call, which never blocks."""
        if self._state != "new":
            raise RuntimeError(f"{self!r} was already entered: make a new scope each time")
        self._state = "entered"
        self._kernel, self._owner = kernel, task
        kernel.enter_scope(task, self, self.seconds)

    def __enter__(self) -> TimeoutScope:
        if self._state != "entered":
            raise RuntimeError("enter the scope through the kernel first: "
                               "`with (yield timeout_after(s)) as scope:`")
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self._state != "entered":
            return False
        self._leave()
        return _expired(self, exc)

    def _leave(self) -> None:
        """Close the scope in the kernel: a plain call, which never blocks."""
        self._state = "exited"
        self._kernel.exit_scope(self._owner, self)

    async def __aenter__(self) -> TimeoutScope:
        return await self  # type: ignore[no-any-return]

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _expired(scope: TimeoutScope, exc: BaseException | None) -> bool:
    """scope has been left with exc: True to swallow it (ignore_after's deadline passed);
    a TaskTimeout is raised for timeout_after's; False for anything else."""
    if isinstance(exc, Cancelled) and exc.scope is scope:
        if scope.ignore:
            return True
        raise TaskTimeout(f"timed out after {scope.seconds} seconds") from exc
    return False


def timeout_after(seconds: float | None, op: Any = None) -> Any:
    """Run op, raising TaskTimeout if it takes longer than seconds; or, without op, a scope.

    op is a generator or coroutine object, or a SystemCall; its value is returned.
    ``seconds=None`` sets no deadline (enclosing ones still apply).
    """
    if op is None:
        return TimeoutScope(seconds, False)
    if seconds is not None and (seconds.__class__ not in _NUMBERS or not seconds >= 0):
        check_seconds(seconds, "a timeout")   # (here, not when op runs: where the call is)
    return _run(seconds, False, op, None)


def ignore_after(seconds: float | None, op: Any = None, default: Any = None) -> Any:
    """As timeout_after, but on expiry op's result is default instead of an error."""
    if op is None:
        return TimeoutScope(seconds, True)
    if seconds is not None and (seconds.__class__ not in _NUMBERS or not seconds >= 0):
        check_seconds(seconds, "a timeout")
    return _run(seconds, True, op, default)


class _OpScope(TimeoutScope):
    """The op form's scope: _run sets its fields itself (the seconds are checked already).

    Calling a class without a Python ``__init__`` is the quickest way CPython makes an
    object, and a server may make one per read.
    """

    __slots__ = ()
    __init__ = object.__init__   # type: ignore[assignment]


@types.coroutine
def _run(seconds: float | None, ignore: bool, op: Any, default: Any
         ) -> Generator[Any, Any, Any]:
    """op under a deadline: usable with ``yield`` in generator tasks, ``await`` in async ones.

    A generator or coroutine op runs by Python's own delegation (``yield from``), not as
    a call on the kernel's trampoline: the same frames and the same exceptions at the
    same places, but its value comes back without a StopIteration through the kernel.
    Only a system call (or anything else, which the kernel rejects with advice) is
    yielded to the kernel.  A server may run every read through here, so this is the
    with-form written out for speed: the scope is made without ``__init__`` (the caller
    checked the seconds), entered and left by one plain call to the kernel each, and its
    exception turned only when op raised.  Nobody else holds the scope (but a
    Cancelled it sent), so it is never "entered" for ``with``, and ``__exit__`` ignores it.
    """
    scope = _OpScope()
    scope.seconds = seconds
    scope.ignore = ignore
    scope.expired = False
    scope.deadline = _INF
    scope._state = "op"
    kernel = getattr(_local, "kernel", None)          # (runtime.current_kernel, inlined)
    task = kernel.current if kernel is not None else None
    if task is None:
        if op.__class__ in COROUTINE_TYPES:
            op.close()               # (it never runs: no "never awaited" warning)
        raise RuntimeError(f"{scope!r} runs an op in a pyos task: yield (or await) it there")
    kernel.enter_scope(task, scope, seconds)   # never blocks: no trip through the kernel
    try:
        if op.__class__ in COROUTINE_TYPES:
            result = yield from op
        else:
            result = yield op
    except BaseException as exc:
        kernel.exit_scope(task, scope)
        if _expired(scope, exc):
            return default           # ignore_after's deadline passed
        raise
    kernel.exit_scope(task, scope)
    return result
