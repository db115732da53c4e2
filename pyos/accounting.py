"""CPU time for ps, sampled in ticks, and the report of a batch that ran too long.

The run phase (scheduler.py) times each batch of tasks with two clock reads and adds
the time to ``_unbilled``.  Charging it to the batch's tasks at every batch was a loop
over the batch at every cycle, more than the run loop's fast path costs per task, so
CPU time is *sampled*, as a Unix kernel's clock tick samples it: once the time not yet
charged adds up to ``cpu_tick``, the batch running then is charged its whole ticks, in
equal shares, and the rest (less than a tick) waits for the next one.  A batch's chance
of being that one is in proportion to its length, so each task's figure is right on
average and charged plus ``_unbilled`` is the exact total; a batch longer than a tick,
the hog ps is asked about, is charged at once.

A batch long enough to report (``slow_task``) always completes a tick, so the report is
made only then: the common path pays one comparison.  ``Scheduler`` keeps
``cpu_tick`` no larger than ``slow_task`` to make that true.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .debug import report_slow

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ["Accounting"]


class Accounting:
    """Mixed into Scheduler: charging CPU time by the tick, and reporting slow batches."""

    #: Seconds of CPU time that add up before a batch is charged them (a Unix "HZ").
    cpu_tick: float = 0.001
    slow_task: float = 0.1          # a batch longer than this is reported
    _unbilled: float                # run since a tick was last charged (set by Scheduler)

    def _tick(self, batch: list[Task], unbilled: float, elapsed: float) -> None:
        """The time not yet charged reached a tick while batch ran (for elapsed seconds):
        charge its whole ticks to batch, and report batch if it ran too long.

        What is left over, less than a tick, is carried to the next one, as a clock tick
        keeps its own time.  Starting again from zero at each tick would tie the ticks to
        batch boundaries: a pair of tasks handing off to each other, with a period a
        little over a tick, would be charged at the same one of its steps every time.
        """
        tick = self.cpu_tick
        charged = unbilled - unbilled % tick if tick > 0 else unbilled
        self._unbilled = unbilled - charged
        share = charged / len(batch)
        for task in batch:
            task.cpu += share
        if elapsed > self.slow_task:
            report_slow(batch, elapsed)

    def _adjust_tick(self) -> None:
        """Keep a tick no longer than slow_task: a slow batch is judged when it ends one."""
        if self.slow_task < self.cpu_tick:
            self.cpu_tick = self.slow_task
