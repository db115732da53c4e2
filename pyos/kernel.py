"""The kernel's state, and the services that system calls use.

A ``Kernel`` owns the task table, the ready queue, the timer heap, the poller and the
outcomes of finished tasks, and knows how a task blocks, wakes and ends: sleeping,
waiting on a descriptor or on another task, being killed, exiting with a value or an
error.  Each system call in syscalls.py is a few lines over one of these methods.
The main loop that runs tasks is ``Scheduler``, in scheduler.py.
"""

from __future__ import annotations

import itertools
import logging
import traceback
from errno import EBADF
from time import perf_counter as clock
from typing import Any

from .debug import TaskInfo, task_info
from .errors import NoSuchTask, TaskError, TaskKilled
from .poller import Poller
from .task import Task, check_target
from .timers import Timers

__all__ = ["Kernel"]

log = logging.getLogger("pyos")


class Kernel:
    """Tasks and what they wait for.  ``Scheduler`` adds the loop that runs them."""

    def __init__(self, poller: Poller, keep_results: int, trace: bool) -> None:
        self._tasks: dict[int, Task] = {}
        self._ready: list[Task] = []
        self._timers = Timers()              # sleepers by deadline
        self._poller = poller
        self._tids = itertools.count(1)
        self._last_tid = 0
        # tid -> (name, value, error, collected) of finished tasks, oldest first
        self._results: dict[int, tuple[str, Any, BaseException | None, bool]] = {}
        self._keep_results = keep_results
        self.trace = trace
        # run()'s target: its failure is raised by run(), so logged only if others still run
        self._main_tid = 0
        self._main_outcome: tuple[Any, BaseException | None] = (None, None)
        self.current: Task | None = None     # the task running now (runtime.current_tid)
        self._caller: Task | None = None     # the task whose system call is being handled
        self._resume = False                 # handle() called schedule(_caller)

    # -- Tasks -----------------------------------------------------------------------------
    def new(self, target: Any, name: str | None = None) -> int:
        """Start target (a generator or coroutine object) as a task; return its id."""
        check_target(target)
        self._last_tid = tid = next(self._tids)
        task = Task(tid, target, name)
        self._tasks[tid] = task
        self._ready.append(task)
        return tid

    def schedule(self, task: Task) -> None:
        """Make task ready to run; its yield will evaluate to ``task.sendval``."""
        task.wait = None
        if task is self._caller:   # the task whose system call is being handled goes on now
            self._resume = True
        else:
            self._ready.append(task)

    def tasks(self) -> list[Task]:
        """The live tasks, in order of creation (for introspection)."""
        return list(self._tasks.values())

    def ps(self, caller: Task | None = None) -> list[TaskInfo]:
        """A snapshot of every task: id, name, state, runs, CPU time and stack."""
        return [task_info(task, task is caller) for task in self._tasks.values()]

    def close(self) -> None:
        """Release the poller.  The scheduler cannot run again afterwards."""
        self._poller.close()

    # -- What system calls use -------------------------------------------------------------
    def sleep(self, task: Task, seconds: float) -> None:
        """Make task ready again after seconds; Sleep(0) lets every ready task go first."""
        task.wait = ("sleep", self._timers.add(clock() + seconds, task))

    def wait_io(self, task: Task, wait: tuple[str, int], file: Any = None) -> None:
        """Block task until the descriptor is ready: wait is ("read", fd) or ("write", fd).

        file is what the descriptor was taken from, if anything: the poller trusts a
        registration only for the same open file.
        """
        event, fd = wait
        self._poller.add(fd, event, task, file)  # old waiters of a reused fd: see _poll_io
        task.wait = wait

    def notify_closed(self, fd: int) -> None:
        """fd was closed: every task waiting on it gets OSError(EBADF) at once."""
        self._poller.forget(fd)
        self._fail_broken()

    def join(self, waiter: Task, tid: int) -> None:
        """Block waiter until task tid exits, then pass on its outcome."""
        if tid == waiter.tid:
            raise RuntimeError(f"{waiter!r} cannot wait for itself")
        target = self._tasks.get(tid)
        if target is not None:
            if target.joiners is None:
                target.joiners = []
            # Waiters share one ("task", tid): 100,000 tasks may wait for one.  (The first
            # waiter's, unless a user-defined call has since sent it elsewhere.)
            wait = ("task", tid)
            if target.joiners and target.joiners[0].wait == wait:
                wait = target.joiners[0].wait
            waiter.wait = wait
            target.joiners.append(waiter)
        elif isinstance(tid, int) and 0 < tid <= self._last_tid:
            name, value, exc, _ = self._results.get(tid, ("", None, None, True))
            if tid in self._results:
                self._results[tid] = (name, value, exc, True)
            self._deliver(waiter, tid, name, value, exc)
        else:
            raise NoSuchTask(f"no task {tid!r}: this scheduler never created it")

    def kill(self, tid: int) -> bool:
        """Unwind task tid and end it; False if there is no such running task."""
        task = self._tasks.get(tid)
        if task is None:
            return False
        self._cancel_wait(task)
        task.close()
        self._exit(task, TaskKilled(f"{task!r} was killed", tid, task.name))
        return True

    # -- Exits -----------------------------------------------------------------------------
    def _cancel_wait(self, task: Task) -> None:
        """Take task out of whatever it waits for: a timer, a descriptor, another task."""
        if task.wait is None:
            return
        kind, detail = task.wait
        task.wait = None
        if kind == "sleep":
            self._timers.cancel(detail)
        elif kind in ("read", "write"):
            self._poller.cancel(detail, kind, task)
        elif kind == "task" and detail in self._tasks:
            self._tasks[detail].joiners.remove(task)

    def _exit(self, task: Task, exc: BaseException) -> None:
        """Task ended with exc: StopIteration(value), an error, or TaskKilled."""
        task.done = True
        del self._tasks[task.tid]
        if type(exc) is StopIteration:
            outcome: tuple[Any, BaseException | None] = (exc.value, None)
        else:
            outcome = (None, exc)
            # run() raises its target's error, but only once every other task is done:
            # while others still run, log it now, or the program carries on in silence.
            quiet = task.tid == self._main_tid
            report = not quiet or bool(self._tasks)
            if report and isinstance(exc, Exception) and not isinstance(exc, TaskKilled):
                log.error("%r failed", task, exc_info=exc)
            if exc.__traceback__ is not None and not quiet and isinstance(exc, Exception):
                traceback.clear_frames(exc.__traceback__)  # kept: don't keep its sockets alive
        if task.tid == self._main_tid:
            self._main_outcome = outcome
        if self.trace:
            how = ("killed" if isinstance(exc, TaskKilled) else
                   f"raised {exc!r}" if outcome[1] else "returned")
            log.info("%r exited: %s", task, how)
        joiners, task.joiners = task.joiners or (), None
        for waiter in joiners:
            waiter.wait = None
            self._deliver(waiter, task.tid, task.name, *outcome)
        if outcome[0] is not None or outcome[1] is not None:
            self._keep(task.tid, (task.name, *outcome, bool(joiners)))
        if not isinstance(exc, Exception):
            raise exc  # Ctrl-C, SystemExit, a test runner's stop: the program's, not the task's

    def _keep(self, tid: int, outcome: tuple[str, Any, BaseException | None, bool]) -> None:
        """Keep an outcome for later WaitTasks, forgetting the oldest beyond the limit."""
        self._results[tid] = outcome
        if len(self._results) > self._keep_results:
            old = next(iter(self._results))
            if not self._results.pop(old)[3]:
                log.warning("forgot the outcome of task %d, which nobody waited for: "
                            "only the last %d are kept", old, self._keep_results)

    def _deliver(self, waiter: Task, tid: int, name: str, value: Any, exc: Any) -> None:
        """Resume waiter with the outcome of task tid: its value, or a TaskError."""
        if exc is None:
            waiter.sendval = value
        elif isinstance(exc, TaskKilled):
            waiter.throw(TaskKilled(str(exc), exc.tid, exc.name))
        else:
            error = TaskError(f"task {tid} ({name}) failed: {exc!r}", tid, name)
            error.__cause__ = exc
            waiter.throw(error)
        self.schedule(waiter)

    def _fail_broken(self) -> None:
        broken, self._poller.broken = self._poller.broken, []
        for task in broken:
            if task.done or task.wait is None or task.wait[0] not in ("read", "write"):
                continue  # killed since its descriptor broke: nothing left to fail
            event, fd = task.wait
            task.wait = None
            task.throw(OSError(EBADF, f"fd {fd} was closed while {task!r} waited to {event} it"))
            self._ready.append(task)

