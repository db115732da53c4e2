"""Timers by deadline: a heap with lazy cancellation, all in one place.

A heap gives the nearest deadline at once and takes a new one in O(log n), but cannot
remove an entry from the middle cheaply.  So a cancelled timer (a sleeper that was
killed, a timeout scope that ended early) is only marked, by setting its ``task`` to
None, and dropped when it reaches the top; when marked entries make up over half the
heap, it is rebuilt, so that cancelled one-hour timeouts do not hold memory until their
deadlines.  A timer is any object with a ``task`` attribute: a ``SleepWait``, or a
timeout scope's deadline.  Nothing here imports the rest of pyos.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

__all__ = ["Timers"]


class Timers:
    """Heap entries are (deadline, seq, timer); seq breaks ties, first set first due."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Any]] = []   # the kernel peeks at heap[0]
        self._seq = itertools.count()
        self._cancelled = 0               # entries whose timer's task is None

    def __len__(self) -> int:
        return len(self.heap) - self._cancelled

    def add(self, deadline: float, timer: Any) -> None:
        """timer falls due at deadline (it must have a ``task`` attribute)."""
        heapq.heappush(self.heap, (deadline, next(self._seq), timer))

    def cancel(self, timer: Any) -> None:
        """timer will never fall due; its entry goes later (see the module docstring)."""
        if timer.task is None:
            return
        timer.task = None
        self._cancelled += 1
        if self._cancelled > 64 and self._cancelled > len(self.heap) // 2:
            self.heap = [e for e in self.heap if e[2].task is not None]
            heapq.heapify(self.heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        """The nearest live deadline, or None when no timer is set."""
        heap = self.heap
        while heap and heap[0][2].task is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def expired(self, now: float) -> list[Any]:
        """Remove and return the live timers due at or before now, earliest first."""
        heap, due = self.heap, []
        while heap and heap[0][0] <= now:
            timer = heapq.heappop(heap)[2]
            if timer.task is None:
                self._cancelled -= 1
            else:
                due.append(timer)
        return due
