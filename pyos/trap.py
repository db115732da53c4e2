"""Serving what a task yields: system calls, sub-coroutine calls, a bare yield.

``_trap`` takes over when a task's step yields anything but what the run loop serves
itself (a bare yield, a socket reading again).  A ``SystemCall`` is handled by
Beazley's protocol: the kernel sets ``call.task`` and ``call.sched`` and calls
``handle()``; a handler that calls ``schedule(task)`` for its caller lets it go on in
the same turn.  A call with a fast half (an ``Op``, fastpath.py: a get, a put, an
acquire) is served without that protocol when the half completes: it is one call, and
the protocol, about as dear again, is for the rest of it, when it has to wait.  A
generator or coroutine is pushed on the task's trampoline stack and run; when a frame
ends, its return value or exception goes to the frame below (``Task.advance``).  Calls
that complete at once go on in the same turn, up to ``calls_per_turn`` of them, so a
loop of them still takes turns with the others.  Mixed into ``Scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .debug import bad_yield, describe_resumed
from .syscalls import WAIT, SystemCall
from .task import COROUTINE_TYPES, FINISHED, Task, without_kernel_frames
from .waits import CallWait

__all__ = ["Trap"]

log = logging.getLogger("pyos")


class Trap:
    """Mixed into Scheduler: what a task yields, served until it blocks or gives way."""

    #: A task may make this many calls in a row that complete at once before it yields
    #: (system calls, and sub-coroutine calls).
    calls_per_turn = 64

    _ready: list[Task]
    _caller: Task | None
    _resume: bool
    trace: bool
    _exit: Callable[[Task, BaseException], None]
    describe: Callable[[Task], str]

    def _trap(self, task: Task, value: Any, exc: BaseException | None = None) -> None:
        """Serve what task yielded (or raised) until it blocks, gives up the CPU or exits.

        A system call is handled by Beazley's protocol: set ``call.task`` and
        ``call.sched``, call ``handle()``.  ``schedule(task)`` from inside handle() does
        not queue the caller: it sets ``_resume``, and the caller goes on in this turn.
        """
        budget = self.calls_per_turn
        while True:
            if exc is not None:
                if task.coro is FINISHED:
                    return               # killed while it sat in the ready queue
                try:
                    value = task.advance(exc)      # pass a return or raise down the stack
                except BaseException as final:     # the outermost frame ended: task over
                    if final.__class__ is StopIteration:   # it returned: nobody reads that
                        final.__traceback__ = None         # traceback, which is all kernel
                    else:                                  # frames (trimming them cost
                        without_kernel_frames(final)       # 0.4 µs of every task's end)
                    self._exit(task, final)
                    return
            if isinstance(value, SystemCall):
                if value.fast is not None and not self.trace:
                    # An Op (fastpath.py): its fast half needs no system call protocol
                    try:
                        result = value.fast(task.tid)
                    except Exception as error:  # bad input: the caller's error, at its yield
                        task.throw(error)
                    else:
                        if result is not WAIT:
                            task.sendval = result if value.value is None else value.value
                        elif not self._block(task, value):
                            return       # it waits: the next task's turn
                else:
                    value.task, value.sched, task.sendval = task, self, None
                    self._caller, self._resume = task, False
                    try:
                        value.handle()
                    except Exception as error:  # bad input: the caller's, at its yield
                        wait, task.wait = task.wait, None
                        if wait is not None:
                            wait.cancel(self, task)
                        task.throw(error)
                        self._resume = True
                        if self.trace:
                            log.info("%r %r -> raised %r", task, value, error)
                    else:
                        if (not self._resume and task.wait is None
                                and task.coro is not FINISHED):
                            task.wait = CallWait(value)   # a user-defined call parked it
                        if self.trace:
                            log.info("%r %r -> %s", task, value, describe_resumed(task)
                                     if self._resume else self.describe(task))
                    finally:
                        self._caller = None
                    if not self._resume:  # blocked (or exited): the next task's turn
                        return
                if not budget:           # it may go on, but others have waited long enough
                    self._ready.append(task)
                    return
                budget -= 1
            elif value is None:
                task.sendval = None      # a bare yield evaluates to None
                self._ready.append(task)
                return
            elif type(value) in COROUTINE_TYPES:
                task.push(value)
                if not budget:           # a loop of calls that never block: take turns
                    self._ready.append(task)
                    return
                budget -= 1
            else:
                task.throw(TypeError(bad_yield(task, value)))
            try:
                value, exc = task.coro.send(task.sendval), None
            except BaseException as error:
                exc = error

    def _block(self, task: Task, op: Any) -> bool:
        """op's fast half said WAIT: run the rest, ``op.block()``, as handle() would have
        (by the protocol, with ``_caller`` set); True if task goes on in this turn.

        A task that must wait is parked here, or its slow half is called: a cancel
        pending for it is thrown in this turn instead (``park``).
        """
        op.task, op.sched, task.sendval = task, self, None
        self._caller, self._resume = task, False
        try:
            queue = op.park_in(task)     # (op.block(), one call nearer: the common
            if queue is None:            # case is a task parking)
                op.call_slow()
            else:
                self.park(task, queue)
        except Exception as error:  # bad input: the caller's error, at its yield
            wait, task.wait = task.wait, None
            if wait is not None:
                wait.cancel(self, task)
            task.throw(error)
            return True
        finally:
            self._caller = None
        return self._resume
