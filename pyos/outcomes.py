"""Outcomes of finished tasks, kept until a ``WaitTask`` collects them.

A task's outcome is handed straight to the tasks already waiting for it.  Otherwise it
is kept here for a later WaitTask, which takes it away: a collected outcome is released
at once (300 tasks returning 1 MB each must not hold 300 MB), and at most ``keep`` are
kept, oldest forgotten first.  Asking for an outcome that is no longer here raises
``OutcomeForgotten``: pyos never passes off a lost result, or a lost failure, as None.

Forgetting a value nobody collected is worth a warning (the program may have meant to
read it); forgetting a failure is not (it was logged when it happened), nor a None or
a kill.  The warning is given once, and the rest are counted and summarised at the end.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from .errors import OutcomeForgotten

__all__ = ["Outcomes"]

log = logging.getLogger("pyos")

Outcome = tuple[str, Any, BaseException | None]   # (task name, value, exception)


class Outcomes:
    """tid -> the outcome of a finished task nobody has collected yet, oldest first."""

    def __init__(self, keep: int) -> None:
        # (an OrderedDict: dropping the oldest key of a plain dict rescans its deleted slots)
        self._kept: OrderedDict[int, Outcome] = OrderedDict()
        self._keep = keep
        self.forgotten_values = 0   # values dropped unread, for the summary
        # run()'s target's (value, exception): never dropped, and never collected by tid
        self.main: tuple[Any, BaseException | None] = (None, None)

    def __len__(self) -> int:
        return len(self._kept)

    def keep(self, tid: int, outcome: Outcome) -> None:
        """Keep outcome for a later WaitTask, forgetting the oldest beyond the limit."""
        self._kept[tid] = outcome
        if len(self._kept) > self._keep:
            old, (name, value, _) = self._kept.popitem(last=False)
            if value is not None:
                self.forgotten_values += 1
                if self.forgotten_values == 1:
                    log.warning("forgot the value task %d (%s) returned, which nobody "
                                "collected: only the last %d outcomes are kept (further "
                                "ones are counted)", old, name, self._keep)

    def collect(self, tid: int) -> Outcome:
        """Take task tid's outcome away; OutcomeForgotten if it is no longer kept."""
        try:
            return self._kept.pop(tid)
        except KeyError:
            raise OutcomeForgotten(
                f"the outcome of task {tid} is no longer kept: it was collected by "
                f"another WaitTask, or forgotten (only the last {self._keep} are kept)"
            ) from None

    def summarise(self) -> None:
        """Log how many values were dropped unread, if more than the one warned about."""
        if self.forgotten_values > 1:
            log.warning("forgot %d task return values in all, which nobody collected",
                        self.forgotten_values)
        self.forgotten_values = 0
