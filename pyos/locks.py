"""Lock, RLock and Condition: the primitives a task owns (sync.py says how all of them work).

A lock knows its owner, so it can refuse a release by anyone else, tell ps and the
deadlock report who its waiters wait for (``blocker``: a cycle of locks is a wait-for
cycle), and notice when its owner ends still holding it: the lock is then *broken*, and
its waiters and later acquirers get ``BrokenLock`` rather than hang.  ``Kernel.at_exit``
tells it when the owner ends; the hook is set only once another task has to wait, so an
acquire nobody contends costs no call into the kernel.  A release hands the lock to the
oldest waiter, which owns it from then on, even before it runs (as in trio): nobody
barges in, and there is nothing left for the waiter to do when it wakes, so ``yield
lock.acquire()`` parks in the lock's WaitQueue directly (``Op.park_in``).

``Condition.wait()`` takes its lock back with a shielded wait (``park_shielded``): it
holds the lock again whenever it returns or raises, and a cancel that arrives once it was
notified waits for the next blocking point, so no notification is lost.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator
from typing import Any

from .errors import BrokenLock, Cancelled, TaskKilled
from .fastpath import WAIT, Op
from .runtime import current_kernel, current_tid
from .sync import Acquirable, AcquireOp, Waiters, label

__all__ = ["Condition", "Lock", "RLock"]

class Lock(Acquirable):
    """Mutual exclusion, owned by one task; first come, first served; broken if its owner
    ends holding it.  ``owner`` is the owning task's id, or None."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._locked = False
        self._owner: int | None = None
        self._broken = ""          # why, once the owner ended holding it
        self._watched = False      # an at_exit hook is set on the owner
        self._waiters = Waiters(self)
        self._make_ops()

    @property
    def owner(self) -> int | None:
        return self._owner

    def locked(self) -> bool:
        return self._locked

    def acquire(self) -> Op:
        """Wait for the lock; return a guard for ``with``.  RuntimeError if already held."""
        return self._acquire

    def _try(self, tid: int) -> Any:
        if not self._locked:
            self._locked, self._owner = True, tid
            return True
        if self._owner == tid:
            raise RuntimeError(f"task {tid} already holds {label(self)} (an RLock may be "
                               "acquired again by its owner)")
        return WAIT

    def _wait(self, tid: int) -> Generator[Any, Any, None]:
        yield from self._wait_handed(self._waiters.park())

    def _park_in(self, op: Op, task: Any) -> Any:
        # It parks itself, handed the guard: the result of `yield lock.acquire()`, and
        # awaited (task None), its Op returns its own value whatever it is woken with
        self._check_broken()
        return self._waiters if op is self._acquire or task is None else None

    def release(self) -> None:
        """Release the lock, handing it to the oldest waiter.  RuntimeError if not held."""
        tid = current_tid()
        if self._owner != tid:
            self._not_held(tid)
        self._release(tid)

    # -- Waiting and handing over --------------------------------------------------------
    def _wait_handed(self, park: Any) -> Generator[Any, Any, None]:
        """Park (plainly, or shielded) until the lock is handed over (or breaks)."""
        self._check_broken()
        yield park                     # handed: ours (see _release); broken: raises

    def _check_broken(self) -> None:
        """The caller is about to wait: raise BrokenLock if the lock is broken, and learn
        when the owner ends (it may have already)."""
        if not self._broken:
            self._watch_owner()
        if self._broken:
            raise BrokenLock(self._broken)

    def _release(self, tid: int) -> None:
        # Hand the lock to the oldest waiter, its owner from now on; or unlock it
        self._owner = taker = self._waiters.hand(self._guard, self._pass_on)
        if taker is None:
            self._locked = False
        others = taker is not None and len(self._waiters) > 0  # learn when the new owner ends
        if self._watched:
            if others:   # the hook goes from the old owner to the new, in one kernel call
                # (the waiters' kernel: it handed the lock over, and is the current one)
                if not self._waiters._kernel.move_at_exit(self._owner_ended, tid, taker):
                    self._watched = False
                    self._owner_ended(None)
                return
            self._watched = False
            current_kernel().discard_at_exit(tid, self._owner_ended)
        elif others:
            self._watch_owner()

    def _pass_on(self, _value: object) -> None:
        """The task handed the lock was killed before it ran: hand it to the next waiter."""
        self._release(self._owner)  # type: ignore[arg-type]

    def _watch_owner(self) -> None:
        """Someone is about to wait: learn when the owner ends (it may have already)."""
        owner = self._owner
        if self._watched or owner is None:
            return
        if current_kernel().at_exit(owner, self._owner_ended):
            self._watched = True
        else:
            self._owner_ended(None)

    def _owner_ended(self, exc: BaseException | None) -> None:
        how = ("" if exc is None else " (it was killed)" if isinstance(exc, TaskKilled) else
               " (it was cancelled)" if isinstance(exc, Cancelled) else
               " (it returned)" if isinstance(exc, StopIteration) else f" (it raised {exc!r})")
        self._broken = f"{label(self)} is broken: task {self._owner} ended holding it{how}"
        self._owner, self._watched = None, False
        self._waiters.fail_all(lambda: BrokenLock(self._broken))

    def _not_held(self, tid: int) -> None:
        held = f"task {self._owner} holds it" if self._owner is not None else "it is not held"
        raise RuntimeError(f"task {tid} cannot release {label(self)}: {held}")

    def _exit(self, exc_type: Any) -> None:
        """Leaving a ``with`` or ``async with`` block: release."""
        tid = current_tid()
        if self._owner != tid:
            if exc_type is GeneratorExit:
                return   # killed in Condition.wait(), not holding it: nothing to release
            self._not_held(tid)
        self._release_once(tid)

    def _release_once(self, tid: int) -> None:
        self._release(tid)

    # -- For Condition ---------------------------------------------------------------------
    def _release_save(self) -> Any:
        self._release(self._owner)  # type: ignore[arg-type]
        return None

    def _acquire_restore(self, state: Any) -> Generator[Any, Any, None]:
        """Take the lock back for Condition.wait(); a cancel meanwhile waits its turn."""
        tid = current_tid()
        if not self._locked:
            self._locked, self._owner = True, tid
        else:
            yield from self._wait_handed(self._waiters.park_shielded())

    def _state(self) -> str:
        if self._broken:
            return "broken"
        waiting = f", {len(self._waiters)} waiting" if len(self._waiters) else ""
        return f"held by task {self._owner}{waiting}" if self._locked else "unlocked"

    def _describe_wait(self) -> str:
        if self._owner is None:
            return f"waiting for {label(self)}"
        return f"waiting for {label(self)} held by task {self._owner}"


class RLock(Lock):
    """A Lock its owner may acquire again; it is free once released as often."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._count = 0

    def _try(self, tid: int) -> Any:
        if not self._locked:
            self._locked, self._owner, self._count = True, tid, 1
        elif self._owner == tid:
            self._count += 1
        else:
            return WAIT
        return True

    def _release(self, tid: int) -> None:
        super()._release(tid)
        self._count = 1      # (the new owner's, if it was handed over)

    def release(self) -> None:
        tid = current_tid()
        if self._owner != tid:
            self._not_held(tid)
        self._release_once(tid)

    def _release_once(self, tid: int) -> None:
        self._count -= 1
        if not self._count:
            self._release(tid)

    def _release_save(self) -> Any:
        count, self._count = self._count, 0
        self._release(self._owner)  # type: ignore[arg-type]
        return count

    def _acquire_restore(self, state: Any) -> Generator[Any, Any, None]:
        yield from super()._acquire_restore(state)
        self._count = state


class Condition(Acquirable):
    """Tasks wait, holding a lock, until another task that holds it notifies them.

    ``lock`` is a Lock or an RLock (a new Lock by default); acquire, release and
    ``async with`` act on it.  wait() and notify() raise RuntimeError unless the caller
    holds the lock.
    """

    def __init__(self, lock: Lock | None = None, name: str | None = None) -> None:
        self.name = name if name is not None or lock is None else lock.name
        self._lock = lock if lock is not None else Lock(name)
        self._waiters = Waiters(self)
        self._enter = AcquireOp(self._lock, value=self)

    @property
    def lock(self) -> Lock:
        return self._lock

    def acquire(self) -> Op:
        return self._lock.acquire()

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def _exit(self, exc_type: Any) -> None:
        self._lock._exit(exc_type)

    @types.coroutine
    def wait(self) -> Generator[Any, Any, bool]:
        """Release the lock, wait to be notified, take the lock back; return True.

        Cancelled while waiting, it takes the lock back before the Cancelled propagates.
        """
        self._check_owner("wait")
        lock = self._lock
        state = lock._release_save()
        try:
            yield self._waiters.park()
        except Cancelled:
            yield from lock._acquire_restore(state)
            raise
        yield from lock._acquire_restore(state)
        return True

    @types.coroutine
    def wait_for(self, predicate: Callable[[], Any]) -> Generator[Any, Any, Any]:
        """Wait until predicate() is true (checked first, and after each wake-up); return it."""
        self._check_owner("wait_for")
        result = predicate()
        while not result:
            yield from self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to n waiters, oldest first (each takes the lock back in turn)."""
        self._check_owner("notify")
        for _ in range(n):
            if not self._waiters.hand(True, self._pass_notice):
                break

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    def _pass_notice(self, _value: object) -> None:
        """A notified waiter was killed before it ran: the notice goes to the next one."""
        self._waiters.hand(True, self._pass_notice)

    def _check_owner(self, what: str) -> None:
        tid = current_tid()
        if self._lock.owner != tid:
            raise RuntimeError(f"task {tid} called {what}() on {label(self)} without "
                               f"holding its lock")

    def _state(self) -> str:
        return f"{len(self._waiters)} waiting, lock {self._lock._state()}"

    def _describe_wait(self) -> str:
        return f"waiting for {label(self)} to be notified"
