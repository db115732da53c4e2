"""The kernel's clock: real time by default, or virtual time for tests and simulations.

Timers read the clock through one method, ``time()``.  ``VirtualClock`` starts at 0.0
and moves only when told: by ``advance()``, or by the kernel itself when no task can
run and a non-blocking poll finds no descriptor ready, when it jumps straight to the
next deadline.  ``Sleep(3600)`` then takes no real time, and a timeout test is exact.
(CPU time per task, for ps, stays real: it measures the work, not the story.)
"""

from __future__ import annotations

import math
from time import perf_counter

__all__ = ["RealClock", "VirtualClock"]


class RealClock:
    """Seconds from ``time.perf_counter``: monotonic, the finest the OS offers."""

    virtual = False
    time = staticmethod(perf_counter)


class VirtualClock:
    """Time that passes only when the kernel is idle, or when ``advance()`` says so."""

    virtual = True

    def __init__(self) -> None:
        self._now = 0.0

    def __repr__(self) -> str:
        return f"VirtualClock(time={self._now})"

    def time(self) -> float:
        """The virtual time now, in seconds since the clock was made."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by seconds (timers then due fire at the next kernel cycle)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"advance() takes a number of seconds, not {seconds!r}")
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"advance() takes a number of seconds >= 0, not {seconds!r}")
        self._now += seconds

    def jump_to(self, deadline: float) -> None:
        """The kernel is idle until deadline: be there now (never goes back)."""
        self._now = max(self._now, deadline)
