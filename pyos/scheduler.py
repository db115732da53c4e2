"""The scheduler: the main loop that runs the kernel's tasks.

How it works.  Every task is a generator (or coroutine) driven by ``send``.  The main loop
repeats three phases until no task is left:

1. **Poll I/O**: ask the poller which descriptors are ready, blocking for as long as
   there is nothing else to do: zero while tasks are ready, until the next timer when
   only timers remain, indefinitely when only I/O remains.  (pyos8 ran this as a task of
   its own; as a phase the loop can tell when it is idle, so it never spins and ends.)
2. **Expire timers**: sleepers whose deadline has passed become ready; then deadlines
   that have passed cancel their tasks (a wait that completed in the same cycle wins).
3. **Run ready tasks**: each task that was ready when the cycle began runs until it
   yields.  A bare ``yield`` puts it at the back of the queue; a generator or coroutine
   is called on the task's trampoline stack; a ``SystemCall`` is handled.  A call or
   sub-coroutine call that completes at once lets the task go on in the same turn, up
   to ``calls_per_turn`` of them.  When the next cycle's phases 1 and 2 would do nothing
   (no descriptor waited on, no timer due, no call from another thread), phase 3 runs
   that cycle's batch at once, counted as a cycle: a hand-off between two tasks, which
   readies one task at a time, then costs a batch instead of a trip round the loop.

The kernel knows nothing about sockets.  Faults stay where they happen: an exception in
a task ends that task only (logged to logger "pyos", passed to its waiters), and bad
input is thrown back into the task that gave it.  How a yielded value is served is in
trap.py; the tables the loop works on, and the services system calls use (sleep,
wait_io, park, join, kill), are in kernel.py, with cancel.py and exits.py.
"""

from __future__ import annotations

import logging
import os
import threading
from time import perf_counter as clock
from typing import Any

from .accounting import Accounting
from .debug import deadlock_report
from .dump import dump_on_signal
from .errors import Deadlock
from .kernel import Kernel
from .poller import make_poller
from .runtime import current_kernel, set_kernel
from .syscalls import ReadWait
from .timeline import Timeline
from .trap import Trap
from .waits import SleepWait
from .wakeup import Wakeup

__all__ = ["Scheduler"]

log = logging.getLogger("pyos")


class Scheduler(Trap, Accounting, Kernel):
    """Runs tasks round-robin and serves their system calls.  See the module docstring."""

    #: Idle this long with tasks waiting on I/O, the kernel checks for closed descriptors.
    audit_after = 0.5
    #: The longest one poll blocks: epoll and select overflow on longer timeouts, and a
    #: sleeper's deadline may be weeks away, or infinite.
    max_block = 3600.0

    # Options, set on the instance only when given: CPython 3.11 stops specializing
    # ``self.x`` for an instance of 30 attributes or more (test_scheduler.py counts them).
    #  slow_task (a batch longer than this is reported) and cpu_tick: accounting.py
    max_threads: int | None = None       # run_in_thread's pool (None: threads.py's default)
    timeline: Timeline | None = None     # the recorder, if asked for (pyos/timeline)
    _monitor: Any = None                 # the console, if asked for (pyos/monitor)
    _at_close: list[Any] | None = None   # library code's clean-ups: see at_close()

    def __init__(
        self, poller: str | None = None, *, trace: bool | None = None,
        slow_task: float | None = 0.1, keep_results: int = 10_000, clock: Any = None,
        max_threads: int | None = None,
        timeline: str | os.PathLike[str] | None = None, timeline_events: int = 100_000,
        monitor: bool | str | None = None,
    ) -> None:
        if trace is None:
            trace = os.environ.get("PYOS_TRACE", "").lower() not in ("", "0", "no", "off")
        if timeline is None:
            timeline = os.environ.get("PYOS_TIMELINE") or None
        if timeline:  # the recorder wraps this scheduler's phases; close() writes it out
            self.timeline = Timeline(timeline, timeline_events)
        super().__init__(make_poller(poller), keep_results, trace, clock)
        self._running = threading.Lock()     # held while mainloop() runs, in any thread
        self._wakeup = Wakeup()              # other threads' way in: call_soon_threadsafe
        self._poller.set_wakeup_fd(self._wakeup.fileno())
        self._audit_due = False              # tasks have run since the last audit
        self._last_audit = -float("inf")
        self._unbilled = 0.0                 # CPU time run since a tick was last charged
        if slow_task != type(self).slow_task:
            self.slow_task = float("inf") if slow_task is None else slow_task
        self._adjust_tick()                  # (accounting.py)
        if max_threads is not None and max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads!r}")
        if max_threads is not None:
            self.max_threads = max_threads
        self.polls = 0                       # cycles that polled, and those that did not:
        self._unpolled = 0                   # one count per cycle (see the cycles property)
        if monitor is None:
            monitor = os.environ.get("PYOS_MONITOR", "")
        if monitor and str(monitor).lower() not in ("0", "no", "off", "false"):
            from .monitor import Monitor  # imported only when asked for
            try:
                self._monitor = Monitor(self, monitor)
            except BaseException:
                self.close()
                raise
        if self.timeline is not None:
            self.timeline.attach(self)

    # -- The public interface --------------------------------------------------------------
    def dump_on_signal(self, signum: int) -> None:
        """Print ``ps`` with every task's stack to stderr whenever signal signum arrives."""
        dump_on_signal(self, signum)

    @property
    def cycles(self) -> int:
        """How many times the main loop has gone round (for the monitor's ``stats``)."""
        return self.polls + self._unpolled

    def call_soon_threadsafe(self, fn: Any, *args: Any) -> None:
        """From any thread: run fn(*args) in the kernel's thread at its next cycle.

        The one thread-safe way into a running kernel; it wakes the kernel even while it
        is blocked in a poll.  An exception fn raises is logged, never propagated.
        """
        self._wakeup.call_soon(fn, args)

    def at_close(self, fn: Any) -> None:
        """Call fn() when the scheduler closes, the latest registered first.

        How library code (a thread pool, child processes) releases what it holds for this
        scheduler while the kernel knows nothing of it.
        """
        self._at_close = [*(self._at_close or ()), fn]   # (made on first use: see above)

    def close(self) -> None:
        """Release the monitor, what library code holds, the poller and the wake-up pipe,
        and write the timeline.  The scheduler cannot run again."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:      # first: its clients may still be asking the kernel
            monitor.close()
        while self._at_close:
            fn = self._at_close.pop()
            try:
                fn()
            except Exception:
                log.exception("at_close(%r) raised", fn)
        super().close()
        self._wakeup.close()
        if self.timeline is not None:
            self.timeline.write()

    def mainloop(self) -> None:
        """Run until every task has exited.  Raises Deadlock if none ever could."""
        if current_kernel() is not None:
            raise RuntimeError("mainloop() cannot be called from inside a running task")
        if not self._running.acquire(blocking=False):
            raise RuntimeError(f"{self!r} is already running its mainloop() in another "
                               "thread: a scheduler runs in one thread at a time")
        set_kernel(self)
        try:
            while self._tasks:
                self._poll_io()          # 1. wait for descriptors, as long as nothing else to do
                self._expire_timers()    # 2. wake the sleepers whose time has come
                self._run_ready()        # 3. run each task that was ready when the cycle began
        except BaseException:
            self._abort()
            raise
        finally:
            set_kernel(None)
            self._running.release()

    # -- Phase 1: I/O ----------------------------------------------------------------------
    def _poll_io(self) -> None:
        # (What makes this phase, or the next, do anything with tasks ready is also what
        # ends _run_ready's rounds: a change to one is a change to the other.)
        if self._wakeup.calls:  # from other threads (or signal handlers): they may wake tasks
            self._wakeup.run_calls()
            if not self._tasks:  # they killed the last task: the loop ends, not a Deadlock
                self._unpolled += 1
                return
        poller = self._poller
        if poller.broken:  # waiters whose descriptor was closed under them: fail them first
            self._fail_broken()
        waiting = poller.readers or poller.writers
        jump = None        # a virtual clock's next deadline, reached if the poll finds nothing
        if self._ready:
            if not waiting:
                self._unpolled += 1
                return           # nothing to poll for and work to do: skip the syscall
            timeout: float | None = 0
        else:
            deadline = self._next_timer() if self._timers.heap else None
            if deadline is None:
                if not waiting and not self._outside():
                    raise Deadlock(deadlock_report(self._tasks.values(), self.describe))
                timeout = None
            elif self.clock.virtual:   # idle time passes at once: look, then jump
                timeout, jump = 0, deadline
            else:          # (tests, not min() and max(): every idle cycle comes here)
                timeout = deadline - self._now()
                if timeout > self.max_block:
                    timeout = self.max_block
                elif timeout < 0:
                    timeout = 0
            if waiting and self._audit_due and timeout != 0:  # audit once idle (below)
                if timeout is None or timeout > self.audit_after:
                    timeout = self.audit_after
        if waiting or timeout != 0:
            self.polls += 1
            woken = poller.poll(timeout)
        else:
            self._unpolled += 1
            woken = []
        if self.trace and woken:
            log.info("woke %s", ", ".join(f"{t!r} ({self.describe(t)})" for t in woken))
        for task in woken:
            task.wait = None
        self._ready += woken
        if not woken:
            if jump is not None:
                if waiting and self._audit_due:
                    self._audit()   # idle on virtual time too: look for closed descriptors
                if not poller.broken:   # (those are failed first, before time moves on)
                    self.clock.jump_to(jump)
            elif timeout and self._audit_due:
                self._audit()    # (what it finds broken is failed as the next cycle begins)

    def _outside(self) -> bool:
        """Will something outside the kernel wake a task (a thread, a process, a signal)?

        Asked only when nothing else could: no task ready, no timer, no descriptor.
        """
        return bool(self._wakeup.calls) or any(
            task.wait is not None and task.wait.external for task in self._tasks.values())

    def _audit(self) -> None:
        """The kernel had nothing to do: look for descriptors closed behind its back.

        Only a task can close a descriptor, so one audit after tasks have run suffices;
        it costs a system call per waiting descriptor, hence at most one per audit_after.
        """
        now = clock()
        if now - self._last_audit >= self.audit_after:
            self._last_audit = now
            self._audit_due = False
            self._poller.audit()

    # -- Phase 2: timers -------------------------------------------------------------------
    def _expire_timers(self) -> None:
        heap = self._timers.heap
        if heap and heap[0][0] <= (now := self._now()):   # the common case is a quick no
            deadlines = []
            for timer in self._timers.expired(now):
                if type(timer) is SleepWait:
                    task = timer.task
                    task.wait = None
                    self._ready.append(task)
                else:
                    deadlines.append(timer)
            for timer in deadlines:   # after the sleepers: a completed wait wins
                if timer.task is not None:
                    self._alarm_due(timer)

    # -- Phase 3: run ----------------------------------------------------------------------
    def _run_ready(self) -> None:  # (a timeline calls it with one task at a time)
        if not self._ready:
            return
        poller = self._poller
        readers = poller.readers
        self._audit_due = True
        start = clock()
        while True:   # a batch, and more while phases 1 and 2 have nothing to do (below)
            batch, self._ready = self._ready, []
            requeue = self._ready.append
            for task in batch:  # (the SIGUSR1 dump reads `task` and `start` from this frame)
                self.current = task
                try:
                    value = task.coro.send(task.sendval)
                except BaseException as exc:  # its innermost frame returned or raised: served
                    ended = exc               # below, or what the task raises next gets this
                else:                         # handler's exception as its __context__
                    try:
                        if value is None:          # a bare yield: the common case, kept short
                            task.sendval = None    # (it evaluates to None, not the last answer)
                            requeue(task)
                        elif (value.__class__ is ReadWait and value.armed is poller
                              and not self._cancels and (fd := value.fd) not in readers
                              and value.file.fileno() == fd):   # (not closed: add()'s test)
                            readers[fd] = task     # a socket reading again, as after each
                            task.wait = value      # message: its registration stands
                            task.sendval = None    # (_trap does the rest)
                        else:
                            self._trap(task, value)
                    except (OSError, ValueError):  # only that fileno() can raise this here: a
                        self._trap(task, value)    # file object closed (_trap tells the task)
                    task.runs += 1
                    continue
                self._trap(task, None, ended)
                task.runs += 1
            now = clock()
            unbilled = self._unbilled + now - start   # CPU time, charged by the tick
            if unbilled < self.cpu_tick:              # (accounting.py)
                self._unbilled = unbilled
            else:
                self._tick(batch, unbilled, now - start)
            # The next cycle's phases 1 and 2 would do nothing (their tests, written out:
            # as a method they cost 80 ns of a 490 ns round): run its batch now, with
            # the same tasks in the same order, but without two calls and this set-up.
            # (No task left: the loop ends there, and what is queued is stale entries.)
            if not self._ready or readers or poller.writers or poller.broken \
                    or self._wakeup.calls or self.timeline is not None or not self._tasks \
                    or (self._timers.heap and self._timers.heap[0][0] <= self._now()):
                break
            self._unpolled += 1    # (a cycle of its own, that did not poll)
            start = now
        self.current = None

    def _abort(self) -> None:
        """The loop is being left by an exception (Ctrl-C, Deadlock): unwind every task."""
        for tid in list(self._tasks):
            try:
                self.kill(tid)
            except Exception:
                log.exception("while unwinding task %d", tid)
        self._ready.clear()
