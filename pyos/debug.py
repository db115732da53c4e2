"""Seeing inside the kernel: ps records, wait descriptions and deadlock reports.

When a cooperative program hangs, the question is always "what is every task waiting
for, and where?".  These helpers answer it from the task's own bookkeeping
(``task.wait``, its trampoline stack) and cost nothing until someone asks.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .scheduler import Scheduler

__all__ = [
    "TaskInfo", "bad_yield", "deadlock_report", "describe_wait", "dump_on_signal",
    "format_ps", "task_info",
]


@dataclass(frozen=True)
class TaskInfo:
    """One row of ``ps``: a task as it stood when the snapshot was taken."""

    tid: int
    name: str
    state: str                              # "ready", "waiting to read fd 7", ...
    runs: int                               # how many times the kernel resumed it
    cpu: float                              # seconds spent running it
    stack: tuple[tuple[str, int, str], ...]  # (file, line, function), innermost last

    @property
    def where(self) -> str:
        """The innermost frame as file:line:function ("-" before it first runs)."""
        return _frame(self.stack[-1]) if self.stack else "-"


def _frame(frame: tuple[str, int, str]) -> str:
    filename, line, func = frame
    return f"{os.path.basename(filename)}:{line}:{func}"


def describe_wait(task: Task, resumed: bool = False) -> str:
    """What task is doing, in words: "ready", "waiting for task 4", ..."""
    if task.done:
        return "exited"
    if resumed:
        return f"resumed with {task.sendval!r}"
    if task.wait is None:
        return "ready"
    kind, detail = task.wait
    if kind == "sleep":
        return f"sleeping for {max(0.0, detail - time.perf_counter()):.3f}s more"
    if kind == "task":
        return f"waiting for task {detail}"
    return f"waiting to {kind} fd {detail}"


def task_info(task: Task, running: bool = False) -> TaskInfo:
    """Snapshot one task for ``ps``; running marks the task that asked."""
    return TaskInfo(task.tid, task.name, "running" if running else describe_wait(task),
                    task.runs, task.cpu, tuple(task.frames()))


def format_ps(infos: Iterable[TaskInfo], stacks: bool = False) -> str:
    """Render ps records as a table, the way ``ps`` would; stacks=True adds every frame."""
    lines = [f"{'TID':>5}  {'NAME':<24} {'STATE':<28} {'RUNS':>8} {'CPU(ms)':>9}  WHERE"]
    for info in infos:
        lines.append(f"{info.tid:>5}  {info.name[:24]:<24} {info.state[:28]:<28} "
                     f"{info.runs:>8} {info.cpu * 1000:>9.1f}  {info.where}")
        if stacks:
            lines.extend(f"{'':>7}{_frame(frame)}" for frame in info.stack)
    return "\n".join(lines)


def bad_yield(task: Task, value: Any) -> str:
    """The TypeError message for a task that yielded something the kernel cannot serve."""
    what = f"{value!r} ({type(value).__name__})"
    if isinstance(value, type):
        what = f"the class {value.__name__}; did you mean {value.__name__}(...)?"
    return (f"{task!r} yielded {what}: a task may yield a SystemCall such as GetTid(), "
            "a generator or coroutine to call, or nothing (a bare yield) to give up the CPU")


def deadlock_report(tasks: Iterable[Task]) -> str:
    """Explain why none of tasks can run: cycles in the wait-for graph, then every task."""
    tasks = list(tasks)
    by_tid = {task.tid: task for task in tasks}

    def line(task: Task) -> str:
        where = task.frames()
        at = f" at {_frame(where[-1])}" if where else ""
        return f"task {task.tid} ({task.name}) {describe_wait(task)}{at}"

    cycles, seen = [], set()
    for start in tasks:                  # follow "waits for" edges; each task has at most one
        path: list[Task] = []
        node: Task | None = start
        while node is not None and node.tid not in seen and node not in path:
            path.append(node)
            wait = node.wait
            node = by_tid.get(wait[1]) if wait and wait[0] == "task" else None
        if node is not None and node in path:
            cycle = path[path.index(node):]
            cycles.append(" -> ".join(f"task {t.tid} ({t.name})" for t in cycle + cycle[:1]))
        seen.update(t.tid for t in path)
    parts = [f"no task can ever run again: {len(tasks)} blocked with nothing to wake them"]
    parts += [f"wait-for cycle: {cycle}" for cycle in cycles]
    parts += ["  " + line(task) for task in tasks]
    return "\n".join(parts)


def dump_on_signal(sched: Scheduler, signum: int) -> None:
    """Install a handler that writes the ps table, stacks included, to stderr on signum.

    The handler runs between two bytecodes of the main thread, so the snapshot is
    consistent, and the program carries on afterwards.
    """
    def handler(_signum: int, _frame: Any) -> None:
        sys.stderr.write(format_ps(sched.ps(), stacks=True) + "\n")
        sys.stderr.flush()

    signal.signal(signum, handler)
