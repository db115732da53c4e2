"""Event, Semaphore and BoundedSemaphore, and what every primitive of pyos shares.

How they work.  Each primitive is a few fields and a ``WaitQueue``; the kernel knows
nothing about them.  A blocking method returns an ``Op`` (fastpath.py), so ``x = yield
obj.m()`` (generator tasks) and ``x = await obj.m()`` (async tasks) both work: an acquire
that need not wait is a system call that completes at once (``yield``, no task switch)
or a plain call (``await``); only a task that must wait parks.

The rule that keeps them correct under cancellation (curio's, trio's, and what asyncio
learned in bpo-27585): waiters are served first come, first served, and a release *hands*
the permit to the oldest waiter (``WaitQueue.hand``), so nobody can barge in before it
runs, and a cancel arriving after that cannot take it back; if the waiter is killed
before it runs, the permit goes on to the next one.  Each primitive's queue describes its
waiters for ps and the deadlock report.  Lock, RLock and Condition, which have owners,
are in locks.py; they share the pieces defined here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from .fastpath import WAIT, Op
from .waits import WaitQueue

__all__ = ["BoundedSemaphore", "Event", "Semaphore"]


class AcquireOp(Op):
    """What acquire() returns (and ``async with`` awaits): ``_try`` or ``_wait``."""

    name = "acquire"

    def fast(self, tid: int) -> Any:
        return self.owner._try(tid)

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        return self.owner._wait(tid)  # type: ignore[no-any-return]

    def park_in(self, task: Any) -> Any:
        return self.owner._park_in(self, task)


class _Wait(Op):
    """What Event.wait() returns."""

    name = "wait"
    needs_tid = False

    def fast(self, tid: int) -> Any:
        return True if self.owner._set else WAIT

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        return (yield self.owner._waiters.park())

    def park_in(self, task: Any) -> Any:
        return self.owner._waiters     # woken with True by set()


def label(obj: Any) -> str:
    """How ps and error messages name a primitive: Lock 'db', or Lock at 0x7f..."""
    kind = type(obj).__name__
    return f"{kind} {obj.name!r}" if obj.name is not None else f"{kind} at {id(obj):#x}"


class Waiters(WaitQueue):
    """A primitive's waiters: ps asks the primitive what they wait for, and who for."""

    __slots__ = ("of",)

    def __init__(self, of: Any) -> None:
        super().__init__(of.name)
        self.of = of

    @property
    def blocker(self) -> int | None:  # type: ignore[override]
        return getattr(self.of, "_owner", None)

    def describe(self, now: float) -> str:
        return self.of._describe_wait()  # type: ignore[no-any-return]


class Guard:
    """What acquire() returns: ``with (yield lock.acquire()):`` releases on the way out."""

    __slots__ = ("_sync",)

    def __init__(self, sync: Any) -> None:
        self._sync = sync

    def __repr__(self) -> str:
        return f"<guard of {label(self._sync)}>"

    def __enter__(self) -> Any:
        return self._sync

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._sync._exit(exc_type)


class _Done:
    """An awaitable that is already done (returns None): what ``__aexit__`` returns."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


DONE = _Done()


class Acquirable:
    """What locks and semaphores share: acquire() returns a guard, ``async with``, and a
    clear error for ``with lock:`` (which cannot wait).  A subclass says how to take it
    at once (``_try``: True, or WAIT) and how to wait for it (``_wait``, a generator)."""

    name: str | None
    release: Callable[[], None]
    _try: Callable[[int], Any]
    _wait: Callable[[int], Generator[Any, Any, Any]]

    def _make_ops(self) -> None:
        self._guard = Guard(self)
        self._acquire = AcquireOp(self, value=self._guard)
        self._enter = AcquireOp(self, value=self)

    def acquire(self) -> Op:
        """Take it, waiting if need be; returns a guard: ``with (yield x.acquire()):``."""
        return self._acquire

    def __repr__(self) -> str:
        return f"<{label(self)} {self._state()}>"

    def __aenter__(self) -> Op:
        return self._enter

    def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> _Done:
        self._exit(exc_type)      # never waits: no coroutine to make and run
        return DONE

    def __enter__(self) -> None:
        raise RuntimeError(f"{label(self)} must be acquired first: `with (yield "
                           "x.acquire()):` in a generator task, `async with x:` in an async one")

    def __exit__(self, *exc: Any) -> None:
        pass

    def _exit(self, exc_type: Any) -> None:
        self.release()

    def _park_in(self, op: Op, task: Any) -> Any:
        """The WaitQueue op may park in directly, or None (see Op.park_in)."""
        return None

    def _state(self) -> str:
        raise NotImplementedError


class Event:
    """A flag tasks wait for: ``set()`` wakes every waiter, and later waits return at once."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._set = False
        self._waiters = Waiters(self)
        self._wait_op = _Wait(self)

    def __repr__(self) -> str:
        return f"<{label(self)} {'set' if self._set else 'unset'}>"

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        self._waiters.wake_all(True)

    def clear(self) -> None:
        self._set = False

    def wait(self) -> Op:
        """Return True once the event is set (at once if it is)."""
        return self._wait_op

    def _describe_wait(self) -> str:
        return f"waiting for {label(self)}"


class Semaphore(Acquirable):
    """``value`` permits; acquire takes one (waiting, first come first served, if none)."""

    def __init__(self, value: int = 1, name: str | None = None) -> None:
        if value < 0:
            raise ValueError(f"a semaphore's value must be >= 0, not {value!r}")
        self.name = name
        self._value = value
        self._waiters = Waiters(self)
        self._make_ops()

    @property
    def value(self) -> int:
        return self._value

    def locked(self) -> bool:
        return self._value == 0

    def _try(self, tid: int) -> Any:
        if self._value:
            self._value -= 1
            return True
        return WAIT

    def _wait(self, tid: int) -> Generator[Any, Any, None]:
        yield self._waiters.park()   # woken only by a hand-off: the permit is ours

    def _park_in(self, op: Op, task: Any) -> Any:
        # a waiter is handed the guard: the result of `yield sem.acquire()`, and awaited
        # (task None), its Op returns its own value whatever it is woken with
        return self._waiters if op is self._acquire or task is None else None

    def release(self) -> None:
        """Give a permit back: to the oldest waiter if there is one."""
        self._pass_on()

    def _pass_on(self, _value: object = None) -> None:
        if not self._waiters.hand(self._guard, self._pass_on):
            self._value += 1

    def _state(self) -> str:
        waiting = f", {len(self._waiters)} waiting" if len(self._waiters) else ""
        return f"value {self._value}{waiting}"

    def _describe_wait(self) -> str:
        return f"waiting for {label(self)}"


class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses (ValueError) to be released above its initial value."""

    def __init__(self, value: int = 1, name: str | None = None) -> None:
        super().__init__(value, name)
        self._bound = value

    def release(self) -> None:
        if self._value >= self._bound:
            raise ValueError(f"{label(self)} released more often than acquired")
        self._pass_on()
