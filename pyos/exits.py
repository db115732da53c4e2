"""How a task ends, and where its outcome goes: its waiters, the outcome table, exit hooks.

A task ends by returning, by raising (its failure: logged unless a task waits for it),
by letting a ``Cancelled`` escape (not a failure), or by being killed.  Whoever waits in
``WaitTask`` gets the outcome at once (a value, or a ``TaskError`` chained to the cause);
otherwise it is kept for a later WaitTask (outcomes.py).  Library code that must act
when a task ends holding something (a lock's owner, a task group's owner) registers an
exit hook, kept only for the tasks that have one.  Mixed into ``Kernel``.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from types import CodeType
from typing import TYPE_CHECKING, Any

from .errors import Cancelled, TaskCancelled, TaskError, TaskKilled

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["Exits"]

log = logging.getLogger("pyos")


class Exits:
    """Mixed into Kernel: the end of a task, its outcome and its exit hooks."""

    _tasks: dict[int, Task]
    _go_on: Callable[[Task], None]
    _cancels: dict[Task, Any]
    _scopes: dict[Task, Any]
    _handoffs: dict[Task, Any]
    _exit_hooks: dict[int, Any]
    _joins: dict[int, Any]
    _main_tid: int
    _outcomes: Any
    trace: bool
    _forget_cancels: Callable[[Task], None]

    def at_exit(self, tid: int, hook: Callable[[BaseException], None]) -> bool:
        """Call ``hook(exc)`` once when task tid ends; False (and no call) if it has ended.

        exc says how it ended: StopIteration, its error, Cancelled or TaskKilled.  For
        library code that must act when a task ends holding something: a lock's owner
        (the lock is broken), a task group's owner (its children are cancelled).
        """
        if tid not in self._tasks:
            return False
        self._exit_hooks.setdefault(tid, {})[hook] = None
        return True

    def move_at_exit(self, hook: Callable[[BaseException], None], old: int, new: int) -> bool:
        """discard_at_exit(old, hook), then at_exit(new, hook): how a lock hands its
        owner's hook to the next owner at every contended release."""
        self.discard_at_exit(old, hook)
        return self.at_exit(new, hook)

    def discard_at_exit(self, tid: int, hook: Callable[[BaseException], None]) -> None:
        """Forget a hook at_exit() set (it is no longer needed); nothing if there is none."""
        hooks = self._exit_hooks.get(tid)
        if hooks is not None:
            hooks.pop(hook, None)
            if not hooks:
                del self._exit_hooks[tid]

    def _exit(self, task: Task, exc: BaseException) -> None:
        """Task ended with exc: StopIteration(value), an error, Cancelled or TaskKilled."""
        task.finish()
        del self._tasks[task.tid]
        if self._cancels or self._scopes:
            self._forget_cancels(task)
        if self._handoffs:
            self._handoffs.pop(task, None)
        joiners = self._joins.pop(task.tid, None) if self._joins else None
        waited = joiners is not None and len(joiners) > 0
        main = task.tid == self._main_tid
        if type(exc) is StopIteration:
            value, error = exc.value, None
        else:
            value, error = None, exc
            if isinstance(exc, Exception) and not isinstance(exc, TaskKilled) and not waited:
                # A failure someone waits for is theirs to handle; run() raises its
                # target's, so it is logged now only if other tasks carry on meanwhile.
                if not main or self._tasks:
                    log.error("%r failed", task, exc_info=exc)
                if not main:
                    _release_frames(exc)  # kept for later: don't keep its sockets alive
        if main:
            self._outcomes.main = (value, error)
        if self.trace:
            how = ("killed" if isinstance(exc, TaskKilled) else
                   f"raised {exc!r}" if error is not None else "returned")
            log.info("%r exited: %s", task, how)
        if waited:
            while (waiter := joiners._pop()) is not None:  # type: ignore[union-attr]
                waiter.wait = None
                self._deliver(waiter, task.tid, task.name, value, error)
        elif not main:   # (run() returns or raises main's: no later WaitTask needs it)
            self._outcomes.keep(task.tid, (task.name, value, error))
        if self._exit_hooks and (hooks := self._exit_hooks.pop(task.tid, None)):
            for hook in hooks:
                try:
                    hook(exc)
                except Exception:
                    log.exception("an exit hook of %r failed", task)
        if not isinstance(exc, (Exception, Cancelled)):
            raise exc  # Ctrl-C, SystemExit, a test runner's stop: the program's, not the task's

    def _deliver(self, waiter: Task, tid: int, name: str, value: Any, exc: Any) -> None:
        """Resume waiter with the outcome of task tid: its value, or a TaskError."""
        if exc is None:
            waiter.sendval = value
        elif isinstance(exc, TaskKilled):
            waiter.throw(TaskKilled(str(exc), exc.tid, exc.name))
        elif isinstance(exc, Cancelled):
            waiter.throw(TaskCancelled(f"task {tid} ({name}) was cancelled", tid, name))
        else:
            error = TaskError(f"task {tid} ({name}) failed: {exc!r}", tid, name)
            error.__cause__ = exc
            waiter.throw(error)
        self._go_on(waiter)


def _release_frames(exc: BaseException) -> None:
    """Drop the locals of the finished frames in exc's traceback (they may hold sockets).

    Only frames that own their locals, that is frames whose generator or call has ended:
    the traceback of an exception raised in another task may also hold the frame of that
    task's live, suspended generator, and clearing it would end that task.  A frame that
    owns its locals is the one kind whose referents include its code object.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if any(type(ref) is CodeType for ref in gc.get_referents(frame)):
            frame.clear()
        tb = tb.tb_next
