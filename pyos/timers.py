"""Sleeping tasks by deadline: a heap with lazy cancellation, all in one place.

A heap gives the nearest deadline at once and takes a new one in O(log n), but cannot
remove an entry from the middle cheaply.  So a cancelled sleep (its task was killed) is
only marked, and dropped when it reaches the top; and when marked entries make up over
half the heap, it is rebuilt, so that killed long sleepers do not hold memory until
their deadlines.  Nothing here imports the rest of pyos.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

__all__ = ["Timers"]


class Timers:
    """Entries are [deadline, seq, task]; task is None once cancelled."""

    def __init__(self) -> None:
        self.heap: list[list[Any]] = []   # the kernel peeks at heap[0] on its hot path
        self._seq = itertools.count()     # breaks ties: first to sleep, first to wake
        self._cancelled = 0               # entries whose task is None

    def __len__(self) -> int:
        return len(self.heap)

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.heap)

    def add(self, deadline: float, task: Any) -> list[Any]:
        """Wake task at deadline; the entry returned is what cancel() takes."""
        entry = [deadline, next(self._seq), task]
        heapq.heappush(self.heap, entry)
        return entry

    def cancel(self, entry: list[Any]) -> None:
        """Forget entry's task; the entry itself goes later (see the module docstring)."""
        entry[2] = None
        self._cancelled += 1
        if self._cancelled > 64 and self._cancelled > len(self.heap) // 2:
            self.heap = [e for e in self.heap if e[2] is not None]
            heapq.heapify(self.heap)
            self._cancelled = 0

    def next_deadline(self) -> float | None:
        """The nearest live deadline, or None when nobody sleeps."""
        heap = self.heap
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def expired(self, now: float) -> list[Any]:
        """Remove and return the tasks whose deadline is at or before now, earliest first."""
        heap, due = self.heap, []
        while heap and heap[0][0] <= now:
            task = heapq.heappop(heap)[2]
            if task is None:
                self._cancelled -= 1
            else:
                due.append(task)
        return due
