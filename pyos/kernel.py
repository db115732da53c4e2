"""The kernel's state, and the services that system calls use.

A ``Kernel`` owns the task table, the ready queue, the timers, the poller, the clock and
the outcomes of finished tasks, and knows how a task blocks and wakes.  Every way of
blocking sets ``task.wait`` to a wait object (waits.py) that can undo itself and
describe itself, so ending a wait early (a kill, a cancel, a timeout, a user-defined
call scheduling the task) is one line: ``wait.cancel(kernel, task)``.  Each system call
in syscalls.py is a few lines over one of these methods.  How a task is cancelled is in
cancel.py and how it ends in exits.py (both mixed in here); the main loop that runs
tasks is ``Scheduler``, in scheduler.py, and how it serves what a task yields, trap.py.
"""

from __future__ import annotations

from collections.abc import Callable
from errno import EBADF
from typing import Any

from .cancel import Cancellation
from .clock import RealClock
from .debug import TaskInfo, task_info
from .errors import NoSuchTask, TaskKilled
from .exits import Exits
from .outcomes import Outcomes
from .poller import Poller
from .task import Task, check_target
from .timers import Timers
from .waits import SleepWait, WaitQueue

__all__ = ["Kernel"]

_FOREVER = float("inf")


class JoinQueue(WaitQueue):
    """The tasks waiting in WaitTask for one task: a wait queue that names its task."""

    __slots__ = ("tid",)

    def __init__(self, tid: int) -> None:
        super().__init__()
        self.tid = tid

    @property
    def blocker(self) -> int:  # type: ignore[override]
        return self.tid

    def describe(self, now: float) -> str:
        return f"waiting for task {self.tid}"

    def cancel(self, kernel: Any, task: Task) -> None:
        super().cancel(kernel, task)
        if not len(self):                  # the last waiter left: no join entry stays
            kernel._joins.pop(self.tid, None)


class Kernel(Cancellation, Exits):
    """Tasks and what they wait for.  ``Scheduler`` adds the loop that runs them."""

    def __init__(self, poller: Poller, keep_results: int, trace: bool, clock: Any) -> None:
        super().__init__()
        self._tasks: dict[int, Task] = {}
        self._ready: list[Task] = []
        self._timers = Timers()              # sleepers and deadlines
        self._poller = poller
        self.clock = clock if clock is not None else RealClock()
        self._now = self.clock.time
        self._last_tid = 0                   # the last task id issued: ids count from 1
        self._outcomes = Outcomes(keep_results)
        self.trace = trace
        # run()'s target: its failure is raised by run(), so logged only if others still run
        self._main_tid = 0
        self.current: Task | None = None     # the task running now (runtime.current_tid)
        # task -> (its run count, give_back) for values handed over: see hand()
        self._handoffs: dict[Task, tuple[int, Callable[[Any], None]]] = {}
        self._joins: dict[int, JoinQueue] = {}    # tid -> the tasks waiting for it to end
        self._prune_handoffs_at = 64
        self._caller: Task | None = None     # the task whose system call is being handled
        self._resume = False                 # handle() called schedule(_caller)
        # tid -> hooks to call when that task ends; only tasks that use them are here
        self._exit_hooks: dict[int, dict[Callable[[BaseException], None], None]] = {}

    # -- Tasks -----------------------------------------------------------------------------
    def new(self, target: Any, name: str | None = None) -> int:
        """Start target (a generator or coroutine object) as a task; return its id."""
        check_target(target)
        self._last_tid = tid = self._last_tid + 1
        task = Task(tid, target, name)
        self._tasks[tid] = task
        self._ready.append(task)
        return tid

    def schedule(self, task: Task) -> None:
        """Make task ready to run; its yield will evaluate to ``task.sendval``.

        Whatever it waited for ends (no stale timer or descriptor wakes it again later),
        and a task already ready, running or finished is not queued again.
        """
        wait = task.wait
        if wait is not None:
            task.wait = None
            wait.cancel(self, task)
        elif task is not self._caller:
            return               # ready or running already (or finished): never twice
        self._go_on(task)

    def _go_on(self, task: Task) -> None:
        """task may run again: at once if its system call is being handled, else queued."""
        if task is self._caller:
            self._resume = True
        else:
            self._ready.append(task)

    def wake(self, task: Task, value: Any = None) -> None:
        """A wait ended with value: the parked task (already out of its wait) is ready."""
        task.wait = None
        task.sendval = value
        self._ready.append(task)

    def wake_error(self, task: Task, exc: BaseException) -> None:
        """A wait ended in failure: exc is raised in the parked task when it runs."""
        task.wait = None
        task.throw(exc)
        self._ready.append(task)

    def hand(self, task: Task, value: Any, give_back: Callable[[Any], None]) -> None:
        """Wake task with value, which must not be lost: a lock, a permit, an item.

        If task is killed before it runs, ``give_back(value)`` is called.  Whether it has
        run since is told by its run count, so the record costs the run loop nothing; the
        records of tasks that have run are dropped now and then.  A record does not hold
        the value: until the task runs, its ``sendval`` does, and no longer than that.
        """
        handoffs = self._handoffs
        handoffs[task] = (task.runs, give_back)
        if len(handoffs) > self._prune_handoffs_at:
            for stale in [t for t, (runs, _) in handoffs.items() if t.runs != runs]:
                del handoffs[stale]
            self._prune_handoffs_at = max(64, 2 * len(handoffs))
        task.wait = None                 # (wake(), inlined: every hand-off comes here)
        task.sendval = value
        self._ready.append(task)

    def tasks(self) -> list[Task]:
        """The live tasks, in order of creation (for introspection)."""
        return list(self._tasks.values())

    def describe(self, task: Task) -> str:
        """What task is doing, in words, with its deadline if it has one."""
        if task.done:
            return "exited"
        now = self._now()
        text = "ready" if task.wait is None else task.wait.describe(now)
        if self._scopes and (deadline := self.deadline(task)) is not None:
            text += f", deadline in {max(0.0, deadline - now):.3f}s"
        return text

    def ps(self, caller: Task | None = None) -> list[TaskInfo]:
        """A snapshot of every task: id, name, state, runs, CPU time and stack."""
        return [task_info(task, "running" if task is caller else self.describe(task))
                for task in self._tasks.values()]

    def close(self) -> None:
        """Release the poller.  The scheduler cannot run again afterwards."""
        self._poller.close()
        self._outcomes.summarise()

    # -- What system calls use -------------------------------------------------------------
    def sleep(self, task: Task, seconds: float) -> None:
        """Make task ready again after seconds; Sleep(0) lets every ready task go first."""
        if self._cancels and self._blocking(task):
            return
        deadline = self._now() + seconds
        task.wait = wait = SleepWait(deadline, task)
        if deadline != _FOREVER:   # Sleep(inf) never wakes: no timer keeps the kernel up
            self._timers.add(deadline, wait)

    def wait_io(self, task: Task, wait: Any) -> None:
        """Block task until wait.fd is ready for wait.event ("read" or "write").

        wait.file is what the descriptor was taken from, if anything: the poller trusts a
        registration only for the same open file.
        """
        if self._cancels and self._blocking(task):
            return
        self._poller.add(task, wait)  # (stale waiters it finds are failed by _poll_io)
        task.wait = wait

    def park(self, task: Task, queue: WaitQueue) -> None:
        """Block task in queue until something wakes it (``WaitQueue.park``)."""
        if self._cancels and self._blocking(task):
            return
        queue.add(self, task)
        task.wait = queue

    def notify_closed(self, fd: int) -> None:
        """fd is closing: every task waiting on it gets OSError(EBADF) at once."""
        self._poller.forget(fd)
        self._fail_broken()

    def join(self, waiter: Task, tid: int) -> None:
        """Block waiter until task tid exits, then pass on its outcome."""
        if tid == waiter.tid:
            raise RuntimeError(f"{waiter!r} cannot wait for itself")
        target = self._tasks.get(tid)
        if target is not None:
            if self._cancels and self._blocking(waiter):
                return               # (before making a join entry nobody would use)
            queue = self._joins.get(tid)
            if queue is None:
                queue = self._joins[tid] = JoinQueue(tid)
            self.park(waiter, queue)
        elif isinstance(tid, int) and 0 < tid <= self._last_tid:
            self._deliver(waiter, tid, *self._outcomes.collect(tid))
        else:
            raise NoSuchTask(f"no task {tid!r}: this scheduler never created it")

    def kill(self, tid: int) -> bool:
        """Unwind task tid and end it; False if there is no such running task."""
        task = self._tasks.get(tid)
        if task is None:
            return False
        wait, task.wait = task.wait, None
        if wait is not None:
            wait.cancel(self, task)
        handoff = self._handoffs.pop(task, None) if self._handoffs else None
        if handoff is not None and handoff[0] == task.runs and task is not self.current:
            handoff[1](task.sendval)   # handed a value it never saw: give it back first
        current, self.current = self.current, task   # its finally blocks run as itself
        try:
            task.close()
        finally:
            self.current = current
        self._exit(task, TaskKilled(f"{task!r} was killed", tid, task.name))
        return True

    def _fail_broken(self) -> None:
        broken, self._poller.broken = self._poller.broken, []
        for task in broken:
            wait = task.wait
            if task.done or getattr(wait, "fd", None) is None:
                continue  # killed or cancelled since its descriptor broke: nothing to fail
            self.wake_error(task, OSError(EBADF, f"fd {wait.fd} was closed while {task!r} "
                                                 f"waited to {wait.event} it"))
