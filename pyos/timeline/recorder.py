"""The recorder: what every task did and when, kept in a ring and written at close.

How it sees everything without a line in the run loop.  A ``Timeline`` wraps four of its
scheduler's methods on that one instance (the class, and every scheduler without a
timeline, keep the plain ones, so a timeline that is off costs nothing at all):

* ``_run_ready`` runs the batch one task at a time through the scheduler's own
  ``_run_ready``, timing each step: a run slice.  The loop itself is not copied, so
  whatever it does (accounting, slow-task reports, fault handling) the recording does
  too.  A task whose step leaves ``task.wait`` set has blocked: its wait begins, named
  by ``wait.describe(now)`` there and then.
* Every way of waking a parked task (I/O, a timer, a wait queue, a join, a cancel, a
  thrown error) ends with the task appended to the ready queue, in one of the three
  phases.  So the recorder looks at what each phase, and each task's step, added to the
  queue: a task it was keeping a wait open for has been woken, by "I/O" (the poll phase,
  which also runs other threads' calls), by a "timer", or by the task that ran.
* ``_exit`` notes how each task ended, and its name.  A task's exit is its newest
  event, so the ring never keeps a task's slices without its name, unless the task is
  still alive (and then the scheduler knows it).

Why waits are described when they begin, not kept as objects and described at write
time, which would be cheaper: a wait object holds what it waits on (a socket's
ReadWait holds the socket, a system call its task), so a ring of 100,000 of them would
keep closed connections and finished tasks alive; and what a description says may
change after the wait ended (a lock's owner, the time left to sleep).  One string format
per blocking point is the price, paid only while recording.

Time is real time, ``time.perf_counter``, for every event: the timeline is a picture of
what the CPU did.  The kernel clock may be virtual (``VirtualClock``), standing still
while tasks run and jumping over sleeps, so it cannot time a run slice; under it a
sleep shows as a short wait whose name says how long it was meant to be.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import deque
from time import perf_counter
from typing import Any

from ..errors import Cancelled, TaskKilled
from .chrome import EXIT, RUN, WAIT, chrome_trace

__all__ = ["Timeline"]

log = logging.getLogger("pyos")


class Timeline:
    """Records a scheduler's run slices, waits and wake-ups; ``write()`` saves them.

    ``Scheduler(timeline=path)`` makes one and ``Scheduler.close()`` writes it, in the
    Chrome trace event format (see chrome.py).  Only the newest ``max_events`` events are
    kept (a run slice, a wait or an exit each count one).
    """

    def __init__(self, path: str | os.PathLike[str], max_events: int) -> None:
        if not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"timeline_events must be a positive int, not {max_events!r}")
        self.path = os.fspath(path)
        self.events: deque[tuple[Any, ...]] = deque(maxlen=max_events)
        self.origin = perf_counter()          # time 0 of the timeline
        self._sched: Any = None
        self._waits: dict[Any, tuple[float, str]] = {}  # task -> (since, what): open waits
        self._stepping: Any = None            # the task whose step is being timed
        self._exited: tuple[Any, ...] | None = None  # its exit, recorded after its slice

    def attach(self, sched: Any) -> None:
        """Record sched from now on: put this recorder's methods in front of its own.

        Two steps, because the scheduler makes its Timeline first (a bad timeline_events
        then fails before any descriptor is opened) and attaches it last, once it is
        complete.
        """
        self._sched = sched
        self._step, self._poll = sched._run_ready, sched._poll_io
        self._expire, self._end = sched._expire_timers, sched._exit
        sched._run_ready, sched._poll_io = self._run_ready, self._poll_io
        sched._expire_timers, sched._exit = self._expire_timers, self._exit

    def __repr__(self) -> str:
        return f"<Timeline {self.path!r}: {len(self.events)} events>"

    # -- Writing ---------------------------------------------------------------------------
    def trace(self) -> dict[str, Any]:
        """The events kept so far as a Chrome trace (a dict ready for json.dump)."""
        now = perf_counter()
        names = {task.tid: task.name for task in self._sched.tasks()}
        still = [(task.tid, since, what) for task, (since, what) in self._waits.items()]
        return chrome_trace(self.events, still, names, self.origin, now, os.getpid(),
                            self.events.maxlen or 0)

    def write(self, path: str | os.PathLike[str] | None = None) -> None:
        """Write the trace to path (the timeline's own file unless told), all or nothing.

        Called by ``Scheduler.close()``; an error is logged, not raised, so that a
        timeline that cannot be saved never hides how the program itself ended.
        """
        path = os.fspath(path) if path is not None else self.path
        partial = f"{path}.{os.getpid()}.partial"   # never a half-written file at path
        try:
            with open(partial, "w", encoding="utf-8") as f:
                json.dump(self.trace(), f, separators=(",", ":"))
            os.replace(partial, path)
        except OSError as exc:
            log.error("could not write the timeline to %s: %s", path, exc)
            return
        finally:
            with contextlib.suppress(OSError):
                os.unlink(partial)                    # (gone already if all went well)
        log.info("timeline: %d events written to %s", len(self.events), path)

    # -- The scheduler's phases, recorded --------------------------------------------------
    def _poll_io(self) -> None:
        n = len(self._sched._ready)
        self._poll()
        self._woken(n, "I/O", perf_counter())

    def _expire_timers(self) -> None:
        n = len(self._sched._ready)
        self._expire()
        self._woken(n, "timer", perf_counter())

    def _woken(self, n: int, waker: Any, at: float, since: float | None = None) -> None:
        """Tasks added to the ready queue after its first n were woken at `at`: end their
        waits.  waker is a phase, or the tid of the task whose step since..at woke them."""
        ready, waits = self._sched._ready, self._waits
        if len(ready) > n and waits:
            for task in ready[n:]:
                if (begun := waits.pop(task, None)) is not None:
                    self.events.append((WAIT, task.tid, begun[0], at, begun[1], waker, since))

    def _run_ready(self) -> None:
        sched = self._sched
        batch = sched._ready
        ready: list[Any] = []
        sched._ready = ready
        record, waits, kernel_time = self.events.append, self._waits, sched._now
        try:
            for task in batch:
                if task.done:                  # killed while it sat in the queue
                    continue
                if waits and (begun := waits.pop(task, None)) is not None:  # woken unseen
                    record((WAIT, task.tid, begun[0], perf_counter(), begun[1], None, None))
                self._stepping = task
                sched._ready = [task]
                start = perf_counter()
                self._step()                   # the scheduler's own loop, for this task
                end = perf_counter()
                added, sched._ready = sched._ready, ready
                self._stepping = None
                record((RUN, task.tid, start, end))
                if added:
                    ready += added
                    if waits:
                        self._woken(len(ready) - len(added), task.tid, end, start)
                if self._exited is not None:
                    record(self._exited)
                    self._exited = None
                elif task.wait is not None:    # it blocked
                    waits[task] = (end, task.wait.describe(kernel_time()))
        finally:
            if sched._ready is not ready:      # a step raised (Ctrl-C): keep what it queued
                ready += sched._ready
                sched._ready = ready
            self._stepping = None
            if self._exited is not None:
                record(self._exited)
                self._exited = None

    def _exit(self, task: Any, exc: BaseException) -> None:
        now = perf_counter()
        if (begun := self._waits.pop(task, None)) is not None:  # killed while parked
            self.events.append((WAIT, task.tid, begun[0], now, begun[1], None, None))
        event = (EXIT, task.tid, now, task.name, _how(exc))
        if task is self._stepping:
            self._exited = event               # after the slice it ended in
        else:
            self.events.append(event)
        self._end(task, exc)


def _how(exc: BaseException) -> str:
    """How a task ended, in a word or three."""
    if type(exc) is StopIteration:
        return "returned"
    if isinstance(exc, TaskKilled):
        return "killed"
    if isinstance(exc, Cancelled):
        return "cancelled"
    return f"raised {type(exc).__name__}"
