"""Blocking calls with a fast path: no dearer than a call that completes at once.

A primitive's blocking method (``Lock.acquire``, ``Queue.get``, ...) returns an ``Op``
made of two halves: ``fast(tid)`` does the work when it need not wait (the lock is free,
an item is there) and returns the result, or ``WAIT``; ``slow(tid)`` is a generator
that parks in a WaitQueue and finishes the work once woken.  An Op without arguments is
made once per primitive and reused (the kernel fills in ``task`` and ``sched`` at each
yield, as for the WaitQueue's own park call).

* In a generator task, ``yield op`` hands the Op to the kernel like any system call:
  the kernel calls the fast half (trap.py; ``handle()`` does the same, under trace), and
  the task goes on in the same turn with no task switch.  Only if it must wait does
  ``block()`` run, by the system call protocol: it parks the task (``park_in``), or calls
  the slow half in it as a sub-coroutine (``task.push``).
* In an async task, ``await op`` (and ``yield from op`` in a generator task) runs the
  fast half in plain Python: the kernel is not involved at all unless the task waits.

Why not a ``types.coroutine`` generator: yielding a generator to the kernel costs twice
what a system call does (it is pushed on the task's stack, and its return travels back
as a StopIteration), and the fast path is the common case.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from .runtime import current_tid
from .syscalls import WAIT, SystemCall

__all__ = ["WAIT", "Op"]   # (WAIT is the kernel's, syscalls.py: the trap tests for it)


class Op(SystemCall):
    """A blocking operation on ``owner``: yield it, await it, or ``yield from`` it.

    A subclass defines ``fast(tid)`` (the result, or WAIT) and ``slow(tid)`` (a generator
    that waits and returns the result).  ``value``, if not None, is returned instead of
    what they return (a lock's guard, say).  See the module docstring.
    """

    name = "op"
    needs_tid = True        # False: fast and slow ignore tid (awaiting skips looking it up)
    arg: Any = None
    value: Any = None

    def __init__(self, owner: Any, arg: Any = None, value: Any = None) -> None:
        self.owner = owner
        if arg is not None:
            self.arg = arg
        if value is not None:
            self.value = value

    def fast(self, tid: int) -> Any:
        raise NotImplementedError

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        raise NotImplementedError

    def park_in(self, task: Any) -> Any:
        """Where the task may park itself, or None (the default: ``slow()`` waits).

        When waiting is a plain park whose woken value is the result (a get, an event,
        a permit), the kernel parks the task in that WaitQueue at once: no generator is
        made and no StopIteration carries the result back.  task is None when the Op is
        awaited (the result is then ``value`` if set, whatever the task was woken with).
        """
        return None

    def handle(self) -> None:
        task = self.task
        result = self.fast(task.tid)
        if result is WAIT:
            self.block()
        else:
            task.sendval = result if self.value is None else self.value
            self.sched.schedule(task)

    def block(self) -> None:
        """The fast half said WAIT: park ``self.task``, or call the slow half in it.

        The system call's second half: the kernel's trap calls it itself when it ran the
        fast half without the system call protocol (trap.py), handle() otherwise.
        """
        queue = self.park_in(self.task)
        if queue is not None:
            self.sched.park(self.task, queue)   # its woken value is the result
        else:
            self.call_slow()

    def call_slow(self) -> None:
        """Call the slow half in ``self.task``, as a sub-coroutine (the protocol's)."""
        task = self.task
        task.push(self.slow(task.tid) if self.value is None else self._slow(task.tid))
        self.sched.schedule(task)

    def _slow(self, tid: int) -> Generator[Any, Any, Any]:
        yield from self.slow(tid)
        return self.value

    def __await__(self) -> Generator[Any, Any, Any]:
        tid = current_tid() if self.needs_tid else 0
        result = self.fast(tid)
        if result is WAIT:
            queue = self.park_in(None)
            if queue is not None:
                result = yield queue.park()
            else:
                result = yield from self.slow(tid)
        return result if self.value is None else self.value

    __iter__ = __await__

    def __repr__(self) -> str:
        arg = "" if self.arg is None else repr(self.arg)
        return f"{self.owner!r}.{self.name}({arg})"
