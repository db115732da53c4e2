"""Cancellation and deadlines: the kernel's half of CancelTask and timeout scopes.

A cancel is a ``Cancelled`` exception thrown into a task at a blocking point.  If the
task is parked there now, its wait is undone (``wait.cancel``) and the exception thrown
at once.  If it is running or ready, or parked by a user-defined call the kernel cannot
undo, the cancel is *pending*: kept in ``_cancels`` and thrown at the task's next
blocking point instead of blocking.  A wait that has already completed (data ready, a
timer due, a value handed over) has made the task ready, so a cancel arriving after it
never takes the value back; that one rule keeps locks and items from being lost.

A timeout scope is a deadline on a task.  When it passes, the task is cancelled with a
``Cancelled`` whose ``scope`` is the outermost scope already expired (it owns the
timeout; inner ones let it pass).  A task's scopes live in ``_scopes``, outermost first,
and one timer per task, its alarm, stands for all of them (see ``_Alarm``): a server
that puts every read under a deadline then pays two list operations per read, not a
heap push and a removal.  These tables are empty for a task that never uses them: the
only cost elsewhere is one truth test of ``_cancels`` at each blocking point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import Cancelled

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["Cancellation"]

_INF = float("inf")


class _Alarm:
    """A task's one entry in the timer heap for all its timeout scopes.

    It is due at or before the task's nearest open deadline, never after.  It may be
    early: a scope that ends leaves it in place (entering and leaving a scope is then
    two list operations, with no heap push or removal), and a scope entered later
    with a later deadline is covered by it.  An early alarm that fires, or that would
    be the next thing the idle kernel waits for, is set right then (``_alarm_due``,
    ``_next_timer``), so nothing ever waits for or wakes at a deadline that is gone.
    ``task`` is None once spent or cancelled (timers.py's convention).
    """

    __slots__ = ("task", "when")

    def __init__(self, task: Task, when: float) -> None:
        self.task: Task | None = task
        self.when = when


class Cancellation:
    """Mixed into Kernel: CancelTask, pending cancels, timeout scopes."""

    _tasks: dict[int, Task]
    _go_on: Callable[[Task], None]
    _timers: Any
    _now: Any

    def __init__(self) -> None:
        self._cancels: dict[Task, Cancelled] = {}      # pending, thrown at the next block
        # Open timeout scopes, outermost first.  A task's list stays, empty, while its
        # alarm does: a server whose every read opens and closes one scope reuses it.
        self._scopes: dict[Task, list[Any]] = {}
        self._alarms: dict[Task, _Alarm] = {}          # each such task's timer (see _Alarm)

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
        """Open scope on task with a deadline seconds from now (None: no deadline).

        This runs before every operation under ``timeout_after``, so it is kept short:
        the task's alarm is set only when it would come too late for this deadline.
        """
        if seconds is None or seconds == _INF:   # a deadline that never comes
            return
        deadline = scope.deadline = self._now() + seconds
        scopes = self._scopes.get(task)
        if scopes is None:
            self._scopes[task] = [scope]
        else:
            scopes.append(scope)
        if seconds == 0:   # due already: it fires at the first blocking point, whatever it is
            if self._on_its_way(task) is None:
                self._cancels[task] = Cancelled("timed out after 0s", scope=scope)
            return
        alarm = self._alarms.get(task)
        if alarm is None or alarm.when > deadline:
            self._set_alarm(task, deadline)

    def exit_scope(self, task: Task, scope: Any) -> None:
        """scope ends, and so does a pending cancel it sent.  Its alarm stays (see _Alarm)."""
        scopes = self._scopes.get(task)
        if scopes is None:
            return
        if scopes and scopes[-1] is scope:   # scopes nest: the one leaving is the innermost
            scopes.pop()
        elif scope in scopes:
            scopes.remove(scope)
        else:
            return
        if self._cancels:
            pending = self._cancels.get(task)
            if pending is not None and pending.scope is scope:
                del self._cancels[task]   # from a scope that has exited: dropped

    def _set_alarm(self, task: Task, when: float) -> None:
        """task's alarm falls due at when (the alarm it had is cancelled)."""
        alarm = self._alarms.get(task)
        if alarm is not None:
            self._timers.cancel(alarm)
        alarm = self._alarms[task] = _Alarm(task, when)
        self._timers.add(when, alarm)

    def _next_timer(self) -> float | None:
        """The nearest timer that will do something when due, or None (the idle path's).

        An alarm at the top of the heap that no open scope's deadline is due at or after
        (its scopes ended; those left expired already) is dropped first: the kernel never
        sleeps until, or jumps virtual time to, a deadline that is gone, and a task that
        only waits on a queue is reported deadlocked at once.  (An alarm that is merely
        early is left: it fires, and ``_alarm_due`` sets it right, once per deadline's
        length at most.)
        """
        timers = self._timers
        while (when := timers.next_deadline()) is not None:
            alarm = timers.heap[0][2]   # (the heap may have been rebuilt: read it again)
            if alarm.__class__ is not _Alarm:
                return when
            scopes = self._scopes[alarm.task]
            for scope in scopes:       # (a loop, not any(): this runs at every idle cycle)
                if scope.deadline >= when and scope.seconds:
                    return when        # (see _alarm_due for the zero timeouts)
            del self._alarms[alarm.task]
            if not scopes:
                del self._scopes[alarm.task]
            timers.cancel(alarm)
        return None

    def _alarm_due(self, alarm: _Alarm) -> None:
        """task's alarm fired: cancel it for the outermost expired scope, if one is due."""
        task, when = alarm.task, alarm.when
        alarm.task = None              # spent
        del self._alarms[task]
        scopes = self._scopes.get(task)
        if not scopes:
            self._scopes.pop(task, None)
            return                     # early: the scopes it was set for have ended
        now = self._now()
        later = min((s.deadline for s in scopes if s.deadline > now), default=None)
        if later is not None:
            self._set_alarm(task, later)
        # (a zero timeout is not the alarm's: it fired at its first blocking point)
        if not any(when <= s.deadline <= now and s.seconds for s in scopes):
            return                     # early: what is left is due later (set just above)
        owner = next(s for s in scopes if s.deadline <= now)
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
        """task ended: drop its pending cancel, its scopes and its alarm."""
        self._cancels.pop(task, None)
        self._scopes.pop(task, None)
        alarm = self._alarms.pop(task, None)
        if alarm is not None:
            self._timers.cancel(alarm)

    def deadline(self, task: Task) -> float | None:
        """The nearest deadline still to come over task's open scopes, or None (for ps
        and the trace): a scope that expired and was carried on in has none left."""
        scopes = self._scopes.get(task)
        return min((s.deadline for s in scopes if not s.expired), default=None) \
            if scopes else None
