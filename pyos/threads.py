"""Blocking functions in worker threads: ``value = yield run_in_thread(fn, *args)``.

A task must never block the kernel's thread, yet real programs call libraries that do
(name resolution, a database driver, a slow disk).  ``run_in_thread`` hands fn to a pool
of worker threads and parks the task on a wait whose ``external`` is True: the kernel
runs the other tasks meanwhile and, with nothing else to do, blocks on its wake-up pipe
instead of reporting a deadlock.  When fn returns, the worker posts back with
``call_soon_threadsafe``, and the task resumes in the kernel's thread with fn's value,
or with its exception raised.  ``ps`` shows such a task as "waiting for thread fn()".

A thread cannot be interrupted, so cancellation (``CancelTask``, a timeout) depends on
where fn is:

* still queued (every worker busy): it is taken off the queue and never runs; the
  Cancelled is raised at once.
* running, by default: the cancel waits for fn to return, because fn may be doing
  something its caller must not walk away from (writing a file, holding a lock).  The
  wait answers ``cancellable = False``, so the kernel keeps the cancel pending; when fn
  returns, its outcome is dropped and the pending cancel is raised right there.  The
  completion does what every blocking point in the kernel does first (``_blocking``):
  fn's return *is* the task's blocking point.  (A checkpoint yielded after the park
  would cost every call a trip through the ready queue, and would also drop a value
  whose fn had returned before the cancel came, against the kernel's rule that a wait
  once completed keeps its value.)
* running, with ``abandon_on_cancel=True``: the Cancelled is raised at once and fn
  finishes alone, its outcome dropped.  For calls that are safe to forget, such as
  getaddrinfo.

``KillTask`` never waits: the task is unwound at once and fn finishes alone.  The pool
(``Scheduler(max_threads=...)``, by default ``min(32, cpus + 4)`` like the standard
library's) is made on first use, one per scheduler, and ``sched.close()`` joins every
worker, abandoned ones included: no thread outlives its kernel.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from weakref import WeakKeyDictionary

from .syscalls import SystemCall

__all__ = ["ThreadCall", "default_max_threads", "run_in_thread"]

log = logging.getLogger("pyos")


def default_max_threads() -> int:
    """How many workers a scheduler's pool has unless told: as ThreadPoolExecutor's."""
    return min(32, (os.cpu_count() or 1) + 4)


class _Pool:
    """One scheduler's workers, and the calls handed to them that have not finished."""

    def __init__(self, size: int) -> None:
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="pyos-worker")
        self.busy: set[Future[Any]] = set()   # added in the kernel, removed by the worker

    def run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Hand fn to a worker (in the kernel's thread); the future says when it is done."""
        future = self.executor.submit(fn, *args, **kwargs)
        self.busy.add(future)
        future.add_done_callback(self.busy.discard)
        return future

    def shutdown(self) -> None:
        """Drop the calls still queued, then join every worker (sched.close())."""
        running = [f for f in list(self.busy) if not f.cancel()]
        if running:
            log.info("closing: waiting for %d worker thread(s) still running", len(running))
        self.executor.shutdown(wait=True, cancel_futures=True)


_pools: WeakKeyDictionary[Any, _Pool] = WeakKeyDictionary()


def _pool(sched: Any) -> _Pool:
    """sched's pool, made on first use and shut down, every worker joined, at its close."""
    pool = _pools.get(sched)
    if pool is None:
        pool = _pools[sched] = _Pool(sched.max_threads or default_max_threads())
        sched.at_close(pool.shutdown)
    return pool


class ThreadCall(SystemCall):
    """``run_in_thread``'s system call, and the task's wait while fn runs (see waits.py)."""

    external = True    # a worker ends this wait: the task is not deadlocked
    blocker = None

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 abandon_on_cancel: bool) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.abandon_on_cancel = abandon_on_cancel
        self.waiter: Any = None      # the parked task; None once it left (killed, abandoned)
        self._future: Future[Any] | None = None
        self._kernel: Any = None

    def __repr__(self) -> str:
        return f"run_in_thread({_name(self.fn)})"

    def handle(self) -> None:
        if self._future is not None:
            raise RuntimeError(f"{self!r} was already run: make a new call each time")
        self.sched.park(self.task, self)   # a pending cancel is raised instead: fn never runs

    # -- The wait protocol -------------------------------------------------------------------
    def add(self, kernel: Any, task: Any) -> None:
        """The kernel parks task here (``park``): hand fn to a worker."""
        self._kernel, self.waiter = kernel, task
        self._future = _pool(kernel).run(self.fn, *self.args, **self.kwargs)
        self._future.add_done_callback(self._done)

    @property
    def cancellable(self) -> bool:
        """Asked by the kernel when a cancel or a timeout comes: may the task leave now?

        Yes when abandoning; yes while fn is still queued, and the answer takes it off the
        queue (a cancelled future never runs, and its callback finds nobody to wake); no
        once fn runs: the kernel then keeps the cancel pending until ``_deliver``.
        """
        return self.abandon_on_cancel or self._future is None or self._future.cancel()

    def cancel(self, kernel: Any, task: Any) -> None:
        """The task leaves now (a kill, an abandoning cancel): a running fn finishes alone."""
        self.waiter = None
        if self._future is not None:
            self._future.cancel()    # if still queued, it never runs

    def describe(self, now: float) -> str:
        return f"waiting for thread {_name(self.fn)}()"

    # -- Completion ----------------------------------------------------------------------------
    def _done(self, future: Future[Any]) -> None:
        """In the worker (or the kernel, for a call cancelled in the queue): post back."""
        try:
            self._kernel.call_soon_threadsafe(self._deliver)
        except RuntimeError:
            pass   # the scheduler has closed: nobody is left to take the outcome

    def _deliver(self) -> None:
        """In the kernel's thread: resume the task with fn's outcome, or its pending cancel."""
        task, self.waiter = self.waiter, None
        if task is None or task.wait is not self:
            return                   # it left meanwhile: nobody wants fn's outcome
        task.wait = None
        kernel = self._kernel
        if kernel._cancels and kernel._blocking(task):
            return                   # cancelled while fn ran: raised now, the outcome dropped
        future = self._future
        try:
            error = future.exception()   # type: ignore[union-attr]
        except BaseException as exc:     # cancelled by someone other than the kernel
            error = exc
        if error is None:
            kernel.wake(task, future.result())   # type: ignore[union-attr]
        else:
            task.throw(error)
            kernel.wake(task)


def run_in_thread(fn: Any, /, *args: Any, abandon_on_cancel: bool = False,
                  **kwargs: Any) -> ThreadCall:
    """Run ``fn(*args, **kwargs)`` in a worker thread: ``value = yield run_in_thread(...)``.

    Returns fn's value, or raises its exception, in the task (``await`` works too).  A
    cancel or a timeout waits for fn to return and then raises, the outcome dropped,
    unless ``abandon_on_cancel`` is True: then it raises at once and fn finishes alone.
    """
    target = fn.func if isinstance(fn, functools.partial) else fn
    if not callable(fn):
        raise TypeError(f"run_in_thread() needs a function to call, not {fn!r}")
    if inspect.iscoroutinefunction(target) or inspect.isgeneratorfunction(target):
        raise TypeError(f"{_name(fn)} is a coroutine function: a task runs it itself "
                        "(yield or await it); run_in_thread is for blocking functions")
    return ThreadCall(fn, args, kwargs, abandon_on_cancel)


def _name(fn: Any) -> str:
    """fn as ps names it: getaddrinfo, Popen.wait, a partial by the function it wraps."""
    if isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return name.rpartition("<locals>.")[2]
