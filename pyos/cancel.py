"""Cancellation and deadlines: the kernel's half of CancelTask and timeout scopes.

A cancel is a ``Cancelled`` exception thrown into a task at a blocking point.  If the
task is parked there now, its wait is undone (``wait.cancel``) and the exception thrown
at once.  If it is running or ready, or parked by a user-defined call the kernel cannot
undo, the cancel is *pending*: kept in ``_cancels`` and thrown at the task's next
blocking point instead of blocking.  A wait that has already completed (data ready, a
timer due, a value handed over) has made the task ready, so a cancel arriving after it
never takes the value back; that one rule keeps locks and items from being lost.

A timeout scope is a deadline on a task: a timer that, when due, cancels the task with a
``Cancelled`` whose ``scope`` is the outermost scope already expired (it owns the
timeout; inner ones let it pass).  A task's scopes live in ``_scopes``, outermost first.
Both tables are empty for a task that never uses them: the only cost elsewhere is one
truth test of ``_cancels`` at each blocking point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Cancelled

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["Cancellation"]


class _Deadline:
    """A timeout scope's entry in the timer heap: ``task`` is None once spent or cancelled.

    Not the scope itself: a scope is a SystemCall, and the kernel sets ``task`` on every
    call yielded to it, so a scope yielded again would revive its dead timer.
    """

    __slots__ = ("scope", "task")

    def __init__(self, scope: Any, task: Task) -> None:
        self.scope = scope
        self.task: Task | None = task


class Cancellation:
    """Mixed into Kernel: CancelTask, pending cancels, timeout scopes."""

    _tasks: dict[int, Task]
    _go_on: Callable[[Task], None]
    _timers: Any
    _now: Any

    def __init__(self) -> None:
        self._cancels: dict[Task, Cancelled] = {}      # pending, thrown at the next block
        self._scopes: dict[Task, list[Any]] = {}       # open timeout scopes, outermost first

    def cancel(self, tid: int) -> bool:
        """Cancel task tid (CancelTask): True, or False if there is no such running task."""
        task = self._tasks.get(tid)
        if task is None:
            return False
        pending = self._on_its_way(task)
        exc = Cancelled(f"task {tid} was cancelled")
        if pending is None:
            self._interrupt(task, exc)
        elif pending.scope is not None:   # a timeout's, which its scope may drop or turn
            if pending is task.pending_error:   # into a TaskTimeout: this one outranks it
                pending.scope.expired = False
                task.throw(exc)
            else:
                self._cancels[task] = exc
        return True

    def _on_its_way(self, task: Task) -> Cancelled | None:
        """The Cancelled already sent to task and not yet raised in it, if any."""
        pending = self._cancels.get(task)
        if pending is None and isinstance(task.pending_error, Cancelled):
            pending = task.pending_error  # type: ignore[assignment]
        return pending

    def _interrupt(self, task: Task, exc: Cancelled) -> None:
        """Throw exc into task now if it is parked at a pyos blocking point, else later."""
        wait = task.wait
        if wait is not None and wait.cancellable:
            task.wait = None
            wait.cancel(self, task)
            self._throw_now(task, exc)
        else:
            self._cancels[task] = exc   # running, ready, or parked by a user-defined call

    def _throw_now(self, task: Task, exc: Cancelled) -> None:
        if exc.scope is not None:
            exc.scope.expired = True
        task.throw(exc)
        self._go_on(task)

    def _blocking(self, task: Task) -> bool:
        """task reached a blocking point: throw its pending cancel instead, if it has one.

        Called only when ``_cancels`` is not empty.  True when the task must not block.
        """
        exc = self._cancels.pop(task, None)
        if exc is None:
            return False
        self._throw_now(task, exc)
        return True

    # -- Timeout scopes ----------------------------------------------------------------------
    def enter_scope(self, task: Task, scope: Any, seconds: float | None) -> None:
        """Open scope on task with a deadline seconds from now (None: no deadline)."""
        if seconds is None or seconds == float("inf"):   # a deadline that never comes
            return
        scope.deadline = self._now() + seconds
        self._scopes.setdefault(task, []).append(scope)
        if seconds == 0:   # due already: it fires at the first blocking point, whatever it is
            if self._on_its_way(task) is None:
                self._cancels[task] = Cancelled("timed out after 0s", scope=scope)
        else:
            scope.timer = _Deadline(scope, task)
            self._timers.add(scope.deadline, scope.timer)

    def exit_scope(self, task: Task, scope: Any) -> None:
        """scope ends: its timer goes, and so does a pending cancel it sent."""
        scopes = self._scopes.get(task)
        if scopes is None or scope not in scopes:
            return
        if scope.timer is not None:
            self._timers.cancel(scope.timer)
        scopes.remove(scope)
        if not scopes:
            del self._scopes[task]
        pending = self._cancels.get(task)
        if pending is not None and pending.scope is scope:
            del self._cancels[task]   # from a scope that has exited: dropped

    def _expire_scope(self, timer: _Deadline) -> None:
        """A scope's deadline is due: cancel its task for the outermost expired scope."""
        task, timer.task, scope = timer.task, None, timer.scope   # the timer is spent
        now = self._now()
        scopes = self._scopes.get(task, ())
        owner = next((s for s in scopes if s.deadline <= now), scope)
        pending = self._on_its_way(task)
        if pending is None:
            self._interrupt(task, Cancelled(f"timed out after {owner.seconds}s", scope=owner))
        elif pending.scope is not None and pending.scope in scopes and \
                scopes.index(owner) < scopes.index(pending.scope):
            if pending is task.pending_error:  # thrown, not yet raised: re-mark the owner
                pending.scope.expired = False
                owner.expired = True
            pending.scope = owner   # an outer deadline is due too: it owns this timeout

    def _forget_cancels(self, task: Task) -> None:
        """task ended: drop its pending cancel and its scopes' timers."""
        self._cancels.pop(task, None)
        for scope in self._scopes.pop(task, ()):
            if scope.timer is not None:
                self._timers.cancel(scope.timer)

    def deadline(self, task: Task) -> float | None:
        """The nearest deadline over task's open scopes, or None (for ps and the trace)."""
        scopes = self._scopes.get(task)
        return min(s.deadline for s in scopes) if scopes else None
