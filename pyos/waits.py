"""What a blocked task waits for: wait objects, and the one wait queue.

A task that blocks has ``task.wait`` set to an object that knows how to undo itself and
how to say what it is.  The kernel asks nothing else of it:

* ``cancel(kernel, task)`` takes the task out of what it waits for and leaves no trace:
  no timer entry, no poller registration, no queue slot.  ``cancellable`` is False for a
  wait the kernel cannot undo (a user-defined call's); a cancel then waits for the
  task's next blocking point.
* ``describe(now)`` is the few words ``ps``, the trace and the deadlock report print.
* ``blocker`` is the id of the task this wait waits for, if any (the task a WaitTask
  names, a lock's owner): the deadlock report follows it to find cycles.
* ``external`` is True when something outside the kernel ends the wait (a thread, a
  process, a signal): such a task is not deadlocked, and the kernel waits for it.

Cancellation, timeouts and introspection then work for every wait, including the ones
library code adds later, with no list of kinds anywhere in the kernel.

``WaitQueue`` is the one wait primitive under every Event, Lock, Semaphore, Condition,
Queue and task group (trio's ParkingLot, curio's SchedFIFO): tasks park in it, first in
first out, until something wakes them with a value.  ``hand()`` wakes one with a value
that must not be lost: a lock, a permit, an item.  Once handed, a cancel cannot take it
back (the task is no longer parked, so the cancel waits for its next blocking point),
and if the task is killed before it runs, the value is given back.  ``park_shielded()``
parks for clean-up that a cancel must not cut short (the cancel waits for the task's next
blocking point), such as a Condition's wait taking its lock back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .syscalls import SystemCall

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["CallWait", "SleepWait", "Wait", "WaitQueue"]


class Wait:
    """The protocol every wait follows; the defaults suit a wait nothing can end early."""

    __slots__ = ()
    cancellable = True
    external = False
    blocker: int | None = None

    def cancel(self, kernel: Any, task: Task) -> None:
        """Take task out of this wait, leaving no trace."""

    def describe(self, now: float) -> str:
        return f"waiting on {self!r}"


class SleepWait(Wait):
    """A sleeping task's timer entry: the timer heap holds it, and so does ``task.wait``."""

    __slots__ = ("deadline", "task")

    def __init__(self, deadline: float, task: Task) -> None:
        self.deadline = deadline
        self.task: Task | None = task   # None once cancelled: the heap drops it lazily

    def cancel(self, kernel: Any, task: Task) -> None:
        if self.deadline != float("inf"):   # (an endless sleep has no timer to cancel)
            kernel._timers.cancel(self)

    def describe(self, now: float) -> str:
        return f"sleeping for {_seconds(self.deadline - now)} more"


def _seconds(span: float) -> str:
    """A time span as ps prints it: 1.500s, 2.0h, or forever (no 300-digit numbers)."""
    span = max(0.0, span)
    if span < 1000:
        return f"{span:.3f}s"
    if span < 3.6e7:
        return f"{span / 3600:.1f}h"
    return "forever"


class CallWait(Wait):
    """A user-defined system call parked the task; only that call knows how to wake it."""

    __slots__ = ("call",)
    cancellable = False

    def __init__(self, call: SystemCall) -> None:
        self.call = call

    def describe(self, now: float) -> str:
        return f"blocked in {self.call!r}"


class _Park(SystemCall):
    """What ``WaitQueue.park()`` returns: one per queue, made once."""

    def __init__(self, queue: WaitQueue) -> None:
        self.queue = queue

    def handle(self) -> None:
        self.sched.park(self.task, self.queue)

    def __repr__(self) -> str:
        return f"park({self.queue!r})"


class WaitQueue(Wait):
    """Tasks parked until woken, first in first out.  See the module docstring.

    The waiters are a list read from a moving head (an empty deque costs 760 bytes, and
    every lock and every awaited task has a queue).  Cancelling a parked task is O(1):
    its entry is marked stale and skipped later, so unwinding 100,000 waiters one by one
    stays linear.
    """

    __slots__ = ("_head", "_kernel", "_park", "_parked", "_stale", "name")

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._parked: list[Task | None] = []
        self._head = 0                          # _parked[:_head] were woken (None)
        self._stale: set[Task] | None = None    # entries whose task left: skipped
        self._kernel: Any = None                # the kernel whose tasks park here
        self._park: SystemCall | None = None    # what park() returns, made once

    def __len__(self) -> int:
        return len(self._parked) - self._head - (len(self._stale) if self._stale else 0)

    def __repr__(self) -> str:
        return f"WaitQueue {self.name!r}" if self.name else f"WaitQueue at {id(self):#x}"

    def park(self) -> SystemCall:
        """Block the caller until woken: ``value = yield q.park()``; returns the value."""
        if self._park is None:
            self._park = _Park(self)
        return self._park

    def park_shielded(self) -> SystemCall:
        """As park(), but a cancel or timeout that arrives meanwhile waits for the caller's
        next blocking point instead of ending this wait (KillTask still ends it).

        For a wait that clean-up must finish: a Condition's wait re-acquiring its lock, a
        task group waiting for the children it cancelled.  A cancel already pending does
        not stop the caller from parking either: it stays pending.
        """
        return _ShieldedPark(self)

    def wake(self, value: Any = None, n: int = 1) -> int:
        """Wake up to n parked tasks, oldest first, with value; return how many woke."""
        woken = 0
        while woken < n and (task := self._pop()) is not None:
            self._kernel.wake(task, value)
            woken += 1
        return woken

    def wake_all(self, value: Any = None) -> int:
        """Wake every parked task with value; return how many woke."""
        return self.wake(value, len(self))

    def fail_all(self, make_error: Callable[[], BaseException]) -> int:
        """Wake every parked task by raising ``make_error()`` in it; return how many woke.

        (A shut-down queue, say: each task gets an exception of its own.)
        """
        woken = 0
        while (task := self._pop()) is not None:
            self._kernel.wake_error(task, make_error())
            woken += 1
        return woken

    def hand(self, value: Any, give_back: Callable[[Any], None]) -> int | None:
        """Wake the oldest parked task with value, which it then owns; return its id, or
        None if nobody waits (so ``if not q.hand(...)`` reads as "nobody took it").

        Should that task be killed before it runs, ``give_back(value)`` is called (to pass
        a lock on, or put an item back): a value once handed over is never lost.  The id
        is for a value with an owner: a lock is its taker's from the moment it is handed.
        """
        task = self._pop()
        if task is None:
            return None
        self._kernel.hand(task, value, give_back)
        return task.tid

    def tasks(self) -> list[Task]:
        """The parked tasks, oldest first (for introspection)."""
        stale = self._stale or ()
        return [t for t in self._parked[self._head:] if t is not None and t not in stale]

    # -- The wait protocol, for the kernel -------------------------------------------------
    def add(self, kernel: Any, task: Task) -> None:
        """Park task at the back (the kernel calls this for ``park()``)."""
        self._kernel = kernel
        if self._stale and task in self._stale:   # parked here before: drop that entry
            self._stale.discard(task)             # (deleted: len() would count a None)
            del self._parked[self._parked.index(task, self._head)]
        self._parked.append(task)

    def cancel(self, kernel: Any, task: Task) -> None:
        parked = self._parked
        if len(parked) > self._head and parked[-1] is task:
            parked.pop()                  # the newest waiter left: the common timeout case
            return
        if self._stale is None:
            self._stale = set()
        self._stale.add(task)
        if len(self._stale) > 64 and 2 * len(self._stale) > len(parked) - self._head:
            self._parked = self.tasks()
            self._head = 0
            self._stale = None

    def describe(self, now: float) -> str:
        return f"waiting on {self!r}"

    def _pop(self) -> Task | None:
        """Take the oldest parked task out, or None if nobody is parked."""
        parked, stale = self._parked, self._stale
        while self._head < len(parked):
            task = parked[self._head]
            parked[self._head] = None
            self._head += 1
            if task is None or (stale and task in stale):
                if task is not None:
                    stale.discard(task)  # type: ignore[union-attr]
                continue
            if self._head >= 32 and 2 * self._head >= len(parked):
                del parked[:self._head]   # reclaim the woken prefix, amortised O(1)
                self._head = 0
            return task
        parked.clear()
        self._head = 0
        return None


class _ShieldedPark(SystemCall):
    """What ``WaitQueue.park_shielded()`` returns: parks the task with a shielded wait."""

    def __init__(self, queue: WaitQueue) -> None:
        self.queue = queue

    def handle(self) -> None:
        self.queue.add(self.sched, self.task)
        self.task.wait = _Shielded(self.queue)

    def __repr__(self) -> str:
        return f"park_shielded({self.queue!r})"


class _Shielded(Wait):
    """A task parked in a queue that a cancel must not take out: the queue's wait, except
    that the kernel keeps a cancel pending instead of throwing it (``cancellable``)."""

    __slots__ = ("queue",)
    cancellable = False

    def __init__(self, queue: WaitQueue) -> None:
        self.queue = queue

    @property
    def blocker(self) -> int | None:  # type: ignore[override]
        return self.queue.blocker

    def cancel(self, kernel: Any, task: Task) -> None:
        self.queue.cancel(kernel, task)   # a kill, or a user call scheduling it

    def describe(self, now: float) -> str:
        return self.queue.describe(now)
