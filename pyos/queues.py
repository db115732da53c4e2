"""Queue, LifoQueue and PriorityQueue: items passed between tasks, over three WaitQueues.

How they work.  ``item = yield q.get()`` / ``await q.get()`` and ``yield q.put(item)``
return Ops (fastpath.py): a get or put that need not wait is a system call that completes
at once (``yield``) or a plain call (``await``), with no task switch.  Getters, putters
and joiners each park in a WaitQueue of their own, first come, first served, and nobody
barges in:

* A put while getters wait (the queue is then empty) *hands* the item to the oldest
  getter, so a ``get_nowait`` cannot take it first.  If that getter is killed before it
  runs, the item goes to the next getter, or back to the front of the queue.
* A get from a full queue hands the freed slot to the oldest waiting putter, which then
  puts its item; a ``put_nowait`` meanwhile finds the queue full.  A putter killed before
  it runs passes the slot on.  A put that is cancelled or times out while it waits has
  put nothing and holds no slot.
* Once handed, an item or a slot stays with its task whatever cancel arrives (it hits
  at the task's next blocking point).

``shutdown(immediate=False)`` follows CPython 3.13's ``asyncio.Queue.shutdown``: puts
raise ``QueueShutDown``, and gets too once the queue is empty; ``immediate=True`` also
drops the items (counting each as done for ``join``).  ``async for item in q`` ends there.
"""

from __future__ import annotations

import heapq
import types
from collections import deque
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from .errors import QueueEmpty, QueueFull, QueueShutDown
from .fastpath import WAIT, Op
from .waits import WaitQueue

__all__ = ["LifoQueue", "PriorityQueue", "Queue"]

#: the items, and how to put one, get one, and put one back at the front
Container = tuple[Any, Callable[[Any], None], Callable[[], Any], Callable[[Any], None]]


class _Waiters(WaitQueue):
    """Tasks waiting to get from, put into or join a queue, as ps describes them."""

    __slots__ = ("doing", "queue")

    def __init__(self, queue: Queue, doing: str) -> None:
        super().__init__(queue.name)
        self.queue = queue
        self.doing = doing

    def describe(self, now: float) -> str:
        queue = self.queue
        if self.doing == "join":
            return f"waiting for {queue._label()} to be done ({queue._unfinished} unfinished)"
        return f"waiting to {self.doing} {queue._label()}"


class _Get(Op):
    needs_tid = False
    name = "get"

    def fast(self, tid: int) -> Any:   # (the queue's own code, here: one call less)
        queue = self.owner
        if queue._items:
            return queue._take()
        if queue._shutdown:
            raise QueueShutDown(f"{queue._label()} is shut down and empty")
        return WAIT

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        return self.owner._get_wait()  # type: ignore[no-any-return]

    def park_in(self, task: Any) -> Any:
        return self.owner._getters     # woken with the item (or QueueShutDown raised)


class _Put(Op):
    needs_tid = False
    name = "put"

    def __init__(self, owner: Any, item: Any) -> None:
        self.owner = owner
        self.arg = item

    def fast(self, tid: int) -> Any:   # (the queue's own code, here: one call less)
        queue = self.owner
        if queue._shutdown:
            raise QueueShutDown(f"{queue._label()} is shut down")
        if 0 < queue._maxsize <= len(queue._items) + queue._reserved:   # (not _room())
            return WAIT
        queue._unfinished += 1                                       # (_add, likewise)
        if not queue._getters.hand(self.arg, queue._item_back):
            queue._put(self.arg)
        return None

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        return self.owner._put_wait(self.arg)  # type: ignore[no-any-return]


class _Join(Op):
    needs_tid = False
    name = "join"

    def fast(self, tid: int) -> Any:
        return WAIT if self.owner._unfinished else None

    def slow(self, tid: int) -> Generator[Any, Any, Any]:
        yield self.owner._joiners.park()


class Queue:
    """First in, first out.  ``maxsize`` <= 0 means unbounded."""

    def __init__(self, maxsize: int = 0, name: str | None = None) -> None:
        self.name = name
        self._maxsize = maxsize
        self._items, self._put, self._get, self._put_front = self._container()
        self._reserved = 0      # slots handed to waiting putters, not yet filled
        self._unfinished = 0    # items put and not yet marked task_done()
        self._shutdown = False
        self._immediate = False
        self._getters = _Waiters(self, "get from")
        self._putters = _Waiters(self, "put into")
        self._joiners = _Waiters(self, "join")
        self._get_op = _Get(self)
        self._join_op = _Join(self)

    def _container(self) -> Container:
        items: deque[Any] = deque()
        return items, items.append, items.popleft, items.appendleft

    def __repr__(self) -> str:
        parts = [f"{len(self._items)} items"]
        if self._maxsize > 0:
            parts.append(f"maxsize {self._maxsize}")
        for waiters, what in ((self._getters, "getters"), (self._putters, "putters")):
            if len(waiters):
                parts.append(f"{len(waiters)} {what} waiting")
        if self._shutdown:
            parts.append("shut down")
        return f"<{self._label()}: {', '.join(parts)}>"

    def _label(self) -> str:
        kind = type(self).__name__
        return f"{kind} {self.name!r}" if self.name is not None else f"{kind} at {id(self):#x}"

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        """True if a put would wait (a slot handed to a waiting putter counts as taken)."""
        return not self._room()

    def _room(self) -> bool:
        return self._maxsize <= 0 or len(self._items) + self._reserved < self._maxsize

    # -- Putting -------------------------------------------------------------------------
    def put(self, item: Any) -> Op:
        """Put item in, waiting while the queue is full.  QueueShutDown once shut down."""
        return _Put(self, item)

    def _put_wait(self, item: Any) -> Generator[Any, Any, None]:
        yield self._putters.park()               # a slot, or QueueShutDown raised
        self._reserved -= 1                      # the slot handed over is ours now
        if self._shutdown:
            self._slot_freed()
            raise QueueShutDown(f"{self._label()} was shut down while waiting to put")
        self._add(item)
        self._slot_freed()   # if a waiting getter took the item, the slot is free again

    def put_nowait(self, item: Any) -> None:
        """Put item in at once, or raise QueueFull (or QueueShutDown)."""
        if self._shutdown:
            raise QueueShutDown(f"{self._label()} is shut down")
        if not self._room():
            raise QueueFull(f"{self._label()} is full")
        self._add(item)

    def _add(self, item: Any) -> None:
        self._unfinished += 1
        if not self._getters.hand(item, self._item_back):
            self._put(item)                  # (with getters waiting, the queue is empty)

    def _item_back(self, item: Any) -> None:
        """A getter handed item was killed before it ran: it goes to the next getter, or
        back to the front (the queue may then hold one item more than maxsize)."""
        if self._immediate:                  # shut down meanwhile: dropped with the rest
            self._done(1)
        elif not self._getters.hand(item, self._item_back):
            self._put_front(item)

    # -- Getting -------------------------------------------------------------------------
    def get(self) -> Op:
        """Take the next item, waiting while the queue is empty.  QueueShutDown once shut
        down and empty."""
        return self._get_op

    def _get_wait(self) -> Generator[Any, Any, Any]:
        return (yield self._getters.park())      # the item, or QueueShutDown raised

    def get_nowait(self) -> Any:
        """Take the next item at once, or raise QueueEmpty (or QueueShutDown)."""
        if self._items:
            return self._take()
        if self._shutdown:
            raise QueueShutDown(f"{self._label()} is shut down and empty")
        raise QueueEmpty(f"{self._label()} is empty")

    def _take(self) -> Any:
        item = self._get()
        if self._maxsize > 0 and len(self._putters):
            self._slot_freed()
        return item

    def _slot_freed(self) -> None:
        """A slot came free: hand it to the oldest waiting putter, if there is one."""
        if len(self._putters) and self._room():
            self._reserved += 1
            if not self._putters.hand(True, self._slot_back):
                self._reserved -= 1

    def _slot_back(self, _value: object) -> None:
        """A putter handed a slot was killed before it ran: the slot goes to the next."""
        self._reserved -= 1
        self._slot_freed()

    def __aiter__(self) -> Queue:
        return self

    @types.coroutine
    def __anext__(self) -> Generator[Any, Any, Any]:
        try:
            return (yield from self._get_op)
        except QueueShutDown:
            raise StopAsyncIteration from None

    # -- Work done, and shutting down ----------------------------------------------------
    def task_done(self) -> None:
        """Mark one item taken from the queue as dealt with (for join)."""
        if self._unfinished <= 0:
            raise ValueError(f"task_done() called more often than items were put into "
                             f"{self._label()}")
        self._done(1)

    def _done(self, n: int) -> None:
        self._unfinished = max(0, self._unfinished - n)
        if not self._unfinished:
            self._joiners.wake_all()

    def join(self) -> Op:
        """Wait until every item put has been marked task_done()."""
        return self._join_op

    def shutdown(self, immediate: bool = False) -> None:
        """No more puts; gets go on until the queue is empty (immediate: it is emptied).

        Every waiting putter, and every waiting getter, gets QueueShutDown.
        """
        self._shutdown = True
        if immediate:
            self._immediate = True
            dropped = len(self._items)
            self._items.clear()
            self._done(dropped)
        self._getters.fail_all(lambda: QueueShutDown(
            f"{self._label()} was shut down while waiting to get"))
        self._putters.fail_all(lambda: QueueShutDown(
            f"{self._label()} was shut down while waiting to put"))


class LifoQueue(Queue):
    """Last in, first out (a stack)."""

    def _container(self) -> Container:
        items: list[Any] = []
        return items, items.append, items.pop, items.append


class PriorityQueue(Queue):
    """Smallest first: put (priority, item) tuples, as with heapq."""

    def _container(self) -> Container:
        items: list[Any] = []
        push = partial(heapq.heappush, items)
        return items, push, partial(heapq.heappop, items), push
