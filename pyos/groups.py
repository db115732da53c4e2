"""TaskGroup, gather and first: tasks started together and waited for together.

How it works.  Each child runs inside a small wrapper, its outermost frame, that calls the
target as a sub-coroutine: the child's own exception stops there and goes to the group
(so the kernel does not log it as unhandled), and its return value goes to its slot.  A
``Kernel.at_exit`` hook on every child tells the group when it has ended, however it
ended (even killed before it first ran).  The first failure cancels the other children,
and the body of an ``async with`` block; once all have ended, ``join()`` raises an
ExceptionGroup of the children's own exceptions (never a Cancelled or a TaskError).

The group's owner is the task that first spawns into it or enters it.  It waits in the
group's WaitQueue, whose ``blocker`` is a running child, so the deadlock report follows
it.  If the owner is cancelled while joining, its children are cancelled and waited for
(with a shielded wait), and the Cancelled goes on as itself.  An at_exit hook on the owner
handles an owner that ends without joining (children cancelled, failures logged) or is
killed (children killed).  gather() and first() are groups with other policies
(gathering.py).
"""

from __future__ import annotations

import logging
import types
from collections.abc import Generator
from functools import partial
from typing import Any

from .errors import Cancelled, TaskKilled
from .runtime import current_kernel, current_tid
from .syscalls import NewTask, Sleep, SystemCall
from .waits import WaitQueue

__all__ = ["TaskGroup"]

log = logging.getLogger("pyos")


class _Joiner(WaitQueue):
    """The owner waiting for the group's children; it waits for the oldest still running."""

    __slots__ = ("group",)

    def __init__(self, group: TaskGroup) -> None:
        super().__init__(group.name)
        self.group = group

    @property
    def blocker(self) -> int | None:  # type: ignore[override]
        return next(iter(self.group._running), None)

    def describe(self, now: float) -> str:
        return (f"waiting for {self.group._label()} "
                f"({len(self.group._running)} running)")


class TaskGroup:
    """Children started with ``spawn``, joined together; see the module docstring."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.results: list[Any] | None = None    # set by join, and by `async with`
        self._slots: list[Any] = []              # each child's value, in spawn order
        self._tids: list[int] = []
        self._running: dict[int, int] = {}      # tid -> slot, of children not ended
        self._errors: list[tuple[int, Exception]] = []  # (slot, its own exception)
        self._state = "open"                     # failed, cancelled, joined, orphaned
        self._owner: int | None = None
        self._kernel: Any = None
        self._done = _Joiner(self)
        self._in_body = False                    # the owner is in its `async with` body
        self._cancelled_owner = False            # a failure cancelled that body
        self._fail_fast = True                   # the policies gather and first change
        self._in_slots = False                   # return_exceptions: errors go in slots
        self._first = False                      # the first to return wins
        self._winner: int | None = None

    def __repr__(self) -> str:
        return (f"<{self._label()} {self._state}: {len(self._tids)} tasks, "
                f"{len(self._running)} running>")

    def _label(self) -> str:
        return f"TaskGroup {self.name!r}" if self.name is not None else \
            f"TaskGroup at {id(self):#x}"

    # -- Starting and cancelling ----------------------------------------------------------
    @types.coroutine
    def spawn(self, target: Any, name: str | None = None) -> Generator[Any, Any, int]:
        """Start target (a generator or coroutine object) as a child; return its id."""
        if self._state != "open":
            raise RuntimeError(f"cannot spawn into {self!r}")
        NewTask(target)                          # checks target as a task would be checked
        return (yield from self._spawn_all((target,), name))

    def _spawn_all(self, targets: Any, name: str | None = None) -> Generator[Any, Any, int]:
        """Start each target (checked already) as a child, all in one system call; return
        the last one's id.  (gather() starts its thousand children with one call.)"""
        if self._owner is None:
            self._adopt()
        start = len(self._slots)
        self._slots += [None] * len(targets)
        tid: int = yield _Spawn(self, [
            (slot, self._child(slot, target), name or getattr(target, "__qualname__", None))
            for slot, target in enumerate(targets, start)])
        return tid

    def _started(self, tid: int, slot: int) -> None:
        """Child tid was just made, and cannot have run yet: the group counts it now."""
        self._tids.append(tid)
        self._running[tid] = slot
        self._kernel.at_exit(tid, partial(self._child_ended, tid))

    def cancel(self) -> None:
        """Cancel every running child (its slot in the results stays None)."""
        if self._state == "open":
            self._state = "cancelled"
        self._cancel_children()

    def _adopt(self) -> None:
        self._owner, self._kernel = current_tid(), current_kernel()
        self._kernel.at_exit(self._owner, self._owner_ended)

    def _cancel_children(self, skip: int | None = None, kill: bool = False) -> None:
        """Cancel (or kill) the running children, but skip (the child calling this)."""
        for tid in list(self._running):
            if tid == skip:
                continue
            if kill:
                self._kernel.kill(tid)
            else:
                self._kernel.cancel(tid)

    # -- What children report -------------------------------------------------------------
    @types.coroutine   # (so that it may `yield from` a coroutine as well as a generator)
    def _child(self, slot: int, target: Any) -> Generator[Any, Any, None]:
        """A child's outermost frame: target's value or exception goes to the group.

        It delegates with ``yield from``, not by calling target on the trampoline: one
        level needs no trampoline, and target's yields then reach the kernel directly.
        """
        try:
            value = yield from target
        except Exception as exc:
            self._failed(slot, exc)
        else:
            self._slots[slot] = value
            if self._first and self._winner is None:
                self._winner = slot
                self._cancel_children(skip=self._tids[slot])

    def _failed(self, slot: int, exc: Exception) -> None:
        if self._in_slots:
            self._slots[slot] = exc
            return
        self._errors.append((slot, exc))
        if self._state == "orphaned":
            self._log_errors([(slot, exc)])
        elif self._fail_fast and self._state in ("open", "cancelled"):
            self._state = "failed"
            self._cancel_children(skip=self._tids[slot])
            if self._in_body and not self._cancelled_owner:
                self._cancelled_owner = True
                self._kernel.cancel(self._owner)

    def _child_ended(self, tid: int, exc: BaseException) -> None:
        self._running.pop(tid, None)
        if not self._running:
            self._done.wake()

    def _owner_ended(self, exc: BaseException) -> None:
        """The owner ended without joining: cancel (or kill) the children, log failures."""
        self._state = "orphaned"
        self._cancel_children(kill=isinstance(exc, TaskKilled))
        self._log_errors(self._errors)

    def _log_errors(self, errors: list[tuple[int, Exception]]) -> None:
        for slot, exc in errors:
            log.error("task %d of %s failed, and the group was not joined to hear it",
                      self._tids[slot], self._label(), exc_info=exc)

    # -- Joining ---------------------------------------------------------------------------
    @types.coroutine
    def join(self) -> Generator[Any, Any, Any]:
        """Wait for every child; return their values in spawn order (see the module
        docstring for failures, and for a cancel of the caller)."""
        if self._state in ("joined", "orphaned"):
            raise RuntimeError(f"{self!r} was already joined")
        try:
            yield from self._wait_all()
        except Cancelled:
            yield from self._abandon()
            raise
        return self._finish(None)

    def _wait_all(self) -> Generator[Any, Any, None]:
        while self._running:
            try:
                yield self._done.park()
            except Cancelled as exc:
                if not (self._cancelled_owner and exc.scope is None):
                    raise
                self._cancelled_owner = False    # the cancel a failure sent the body: ours

    def _abandon(self) -> Generator[Any, Any, None]:
        """The owner is cancelled: cancel the children and wait for them, shielded."""
        self._cancel_children()
        while self._running:
            yield self._done.park_shielded()
        self._close()
        self._log_errors(self._errors)

    def _close(self) -> None:
        self._state = "joined"
        self.results = list(self._slots)
        if self._owner is not None:
            self._kernel.discard_at_exit(self._owner, self._owner_ended)

    def _finish(self, body_error: Exception | None) -> Any:
        self._close()
        errors = [exc for _, exc in self._errors]
        if body_error is not None:
            errors.insert(0, body_error)
        if self._first:
            if self._winner is not None:
                return self._winner, self._slots[self._winner]
            if not errors:
                raise RuntimeError("first(): no target returned (all were cancelled)")
        if errors:
            raise ExceptionGroup(f"{len(errors)} failed in {self._label()}", errors)
        return self.results

    async def __aenter__(self) -> TaskGroup:
        if self._owner is None:
            self._adopt()
        self._in_body = True
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self._in_body = False
        if exc is not None and not isinstance(exc, Exception):
            if isinstance(exc, Cancelled) and self._cancelled_owner and exc.scope is None:
                self._cancelled_owner = False    # ours: a child failed
            elif isinstance(exc, Cancelled):
                await _run(self._abandon())      # the owner was cancelled, or timed out
                return False
            else:
                return False   # killed (the at_exit hook kills the children), Ctrl-C, ...
        body_error = exc if isinstance(exc, Exception) else None
        if body_error is not None and self._state in ("open", "cancelled"):
            self._state = "failed"
            self._cancel_children()
        try:
            await _run(self._wait_all())
        except Cancelled:
            await _run(self._abandon())
            raise
        if self._cancelled_owner:   # our cancel may still be on its way: take it here
            self._cancelled_owner = False
            try:
                await Sleep(0)
            except Cancelled:
                pass
        self._finish(body_error)
        return False


class _Spawn(SystemCall):
    """NewTask for a group's children: the group counts each child before anything else
    runs, the last one's id being the answer.

    (Not after the spawn returns: a spawn that ends its caller's turn lets the child run,
    and maybe end, first.)
    """

    def __init__(self, group: TaskGroup, children: list[tuple[int, Any, str | None]]) -> None:
        self.group, self.children = group, children

    def handle(self) -> None:
        new, started, tid = self.sched.new, self.group._started, None
        for slot, target, name in self.children:
            tid = new(target, name)
            started(tid, slot)
        self.task.sendval = tid
        self.sched.schedule(self.task)

    def __repr__(self) -> str:
        return f"spawn {len(self.children)} into {self.group!r}"


@types.coroutine
def _run(gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Let an async method await one of the plain generators above."""
    return (yield from gen)
