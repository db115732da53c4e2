"""Reading a running kernel from another thread, without ever crashing either side.

The monitor's thread reads the kernel's tables while the kernel changes them, and the
kernel takes no lock for it (that would cost every cycle).  So the reads follow three
rules.  A table is copied in one step (``list(d.values())`` runs in C, holding the GIL)
and copied again if it changed size meanwhile.  Each task is read on its own, and
whatever reading it raises (its wait ended between two attribute reads, say) turns into
a row that says so.  Nothing here writes to the kernel: actions go through
``call_soon_threadsafe`` (commands.py).  A snapshot may thus be slightly inconsistent
(a task counted ready that has just blocked), never wrong about what it shows.

A task that hogs the CPU is the one the console is most often opened for: it is found
in the kernel thread's live stack (``sys._current_frames()``), with how long it has been
running and every frame it is in now, including plain functions it called.

One read is not safe at all: ``gi_yieldfrom`` (and ``cr_await``) of a generator that is
executing in another thread reads its value stack through a stale pointer, and CPython
3.11 crashes (the churn test segfaulted about one run in ten).  ``Task.frames()`` follows
those chains, so the monitor never calls it; ``_chain`` below asks ``gi_running`` first,
in one expression with no call, backward jump or allocation in between, so the
interpreter cannot switch threads between the test and the read.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from types import FrameType, GeneratorType
from typing import Any

from ..debug import TaskInfo
from ..scheduler import Scheduler
from ..task import COROUTINE_TYPES

__all__ = ["Running", "Snapshot", "frames_of", "running", "task_row", "tasks", "wait_graph"]

Frame = tuple[str, int, str]           # (file, line, function), as Task.frames() gives
# SystemCall.__await__ only relays a call: not where a task "is" (as in Task.frames())
_RELAY = (os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "syscalls.py"), "__await__")
_KERNEL_CODES = (Scheduler._run_ready.__code__, Scheduler._trap.__code__)


def tasks(sched: Scheduler) -> list[Any]:
    """The live tasks, in order of creation, copied while the kernel runs."""
    for _ in range(100):
        try:
            return list(sched._tasks.values())
        except RuntimeError:           # it changed size while being copied: again
            continue
    return []


@dataclass
class Running:
    """The task the kernel is running now, seen from its thread's live stack."""

    task: Any
    seconds: float | None              # how long it has been running, if known
    live: list[Frame] | None           # its frames on the kernel's stack, outermost first


def running(sched: Scheduler) -> Running | None:
    """The task running now, or None if the kernel is between tasks (or blocked)."""
    task = sched.current
    if task is None:
        return None
    seconds, live = None, None
    try:
        for frame in sys._current_frames().values():
            seconds, live = _from_stack(frame, sched, task)
            if live is not None:
                break
    except Exception:                  # a stack changing as it is read: say less
        pass
    return Running(task, seconds, live)


def _from_stack(top: FrameType, sched: Scheduler, task: Any) -> tuple[float | None, Any]:
    """(running time, the task's live frames) if top's stack runs task in sched's loop.

    The frames above the kernel's (``_trap`` or ``_run_ready``) are what it is running
    now; the task's own code starts at its innermost trampoline frame, ``task.coro``.
    """
    above: list[FrameType] = []
    frame: FrameType | None = top
    while frame is not None and frame.f_code not in _KERNEL_CODES:
        above.append(frame)
        frame = frame.f_back
    if frame is None or frame.f_locals.get("self") is not sched:
        return None, None
    seconds = None
    while frame is not None and frame.f_code is not _KERNEL_CODES[0]:
        frame = frame.f_back            # from _trap down to _run_ready, which has `start`
    if frame is not None and "start" in frame.f_locals:
        seconds = time.perf_counter() - frame.f_locals["start"]
    coro = task.coro
    own = getattr(coro, "gi_frame", None) or getattr(coro, "cr_frame", None)
    if own not in above:
        return seconds, []             # in the kernel (a system call): not in its own code
    above = above[:above.index(own) + 1]
    live = [(f.f_code.co_filename, f.f_lineno, f.f_code.co_name) for f in reversed(above)]
    return seconds, live


def frames_of(task: Any, run: Running | None) -> list[Frame]:
    """task's whole stack, outermost first: its trampoline callers, then where it is.

    What ``Task.frames()`` gives, read safely from another thread (module docstring); for
    the running task, its live frames replace those of its innermost trampoline frame.
    """
    live = run.live if run is not None and run.task is task else None
    frames = [*(task.callers or ()), task.coro]
    if live:
        frames.pop()
    where: list[Frame] = []
    for coro in frames:
        _chain(coro, where)
    return where + (live or [])


def _chain(coro: Any, where: list[Frame]) -> None:
    """Append the frames of coro and of what it delegates to (yield from, await)."""
    while type(coro) in COROUTINE_TYPES:
        if type(coro) is GeneratorType:
            frame = coro.gi_frame
            coro = None if coro.gi_running else coro.gi_yieldfrom   # one step: see above
        else:
            frame = coro.cr_frame
            coro = None if coro.cr_running else coro.cr_await
        if frame is not None:
            code = frame.f_code
            if (code.co_filename, code.co_name) != _RELAY:
                where.append((code.co_filename, frame.f_lineno, code.co_name))


def task_row(sched: Scheduler, task: Any, run: Running | None) -> TaskInfo:
    """One ps row; a task that changes as it is read gets a row that says so."""
    try:
        if run is not None and run.task is task:
            seconds = run.seconds or 0.0
            state = "running" if run.seconds is None else f"running for {seconds:.3f}s"
        else:
            seconds, state = 0.0, sched.describe(task)
        return TaskInfo(task.tid, task.name, state, task.runs, task.cpu + seconds,
                        tuple(frames_of(task, run)))
    except Exception as exc:
        return TaskInfo(task.tid, task.name, f"(changed while read: {type(exc).__name__})",
                        task.runs, task.cpu, ())


@dataclass
class Snapshot:
    """The wait-for graph: who waits for what, and for whom."""

    blocked: list[tuple[Any, str, int | None, bool]]   # (task, what, blocker tid, external)
    others: int                                         # tasks ready or running
    cycles: list[list[Any]]                             # each cycle's tasks, in order
    names: dict[int, str]                               # tid -> name of every live task


def wait_graph(sched: Scheduler) -> Snapshot:
    """Follow each blocked task's ``wait.blocker`` (as the deadlock report does)."""
    live = tasks(sched)
    by_tid = {t.tid: t for t in live}
    blocked, edges = [], {}
    for task in live:
        wait = task.wait
        if wait is None:
            continue
        try:
            what = sched.describe(task)
            blocker = getattr(wait, "blocker", None)
            external = bool(getattr(wait, "external", False))
        except Exception as exc:
            what, blocker, external = f"(changed while read: {type(exc).__name__})", None, False
        blocked.append((task, what, blocker, external))
        if blocker in by_tid:
            edges[task] = by_tid[blocker]
    cycles, seen = [], set()
    for start in edges:                # each task waits for at most one other
        path: list[Any] = []
        node = start
        while node is not None and node not in seen and node not in path:
            path.append(node)
            node = edges.get(node)
        if node is not None and node in path:
            cycles.append(path[path.index(node):])
        seen.update(path)
    return Snapshot(blocked, len(live) - len(blocked), cycles,
                    {t.tid: t.name for t in live})
