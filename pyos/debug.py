"""Seeing inside the kernel: ps records, wait descriptions and deadlock reports.

When a cooperative program hangs, the question is always "what is every task waiting
for, and where?".  These helpers answer it from the task's own bookkeeping
(``task.wait``, its trampoline stack) and cost nothing until someone asks.
"""

from __future__ import annotations

import os
import reprlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .task import Task

__all__ = [
    "TaskInfo", "bad_yield", "deadlock_report", "describe_wait", "format_ps", "task_info",
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
        """The innermost frame of the program's own code (not pyos's), file:line:function."""
        for frame in reversed(self.stack):
            if os.path.dirname(os.path.abspath(frame[0])) != _PYOS_DIR:
                return _frame(frame)
        return _frame(self.stack[-1]) if self.stack else "-"


_PYOS_DIR = os.path.dirname(os.path.abspath(__file__))


def _frame(frame: tuple[str, int, str]) -> str:
    filename, line, func = frame
    return f"{os.path.basename(filename)}:{line}:{func}"


def describe_wait(task: Task, resumed: bool = False) -> str:
    """What task is doing, in words: "ready", "waiting for task 4", ..."""
    if task.done:
        return "exited"
    if resumed:
        if task.pending_error is not None:   # e.g. WaitTask on a task that failed
            return f"resumed with exception {task.pending_error!r}"
        return f"resumed with {reprlib.repr(task.sendval)}"
    if task.wait is None:
        return "ready"
    kind, detail = task.wait
    if kind == "sleep":
        return f"sleeping for {max(0.0, detail[0] - time.perf_counter()):.3f}s more"
    if kind == "task":
        return f"waiting for task {detail}"
    if kind == "call":
        return f"blocked in {detail!r}"
    return f"waiting to {kind} fd {detail}"


def task_info(task: Task, running: bool = False, run_time: float = 0.0) -> TaskInfo:
    """Snapshot one task for ``ps``; running marks the one running now, for run_time."""
    state = "running" if running else describe_wait(task)
    return TaskInfo(task.tid, task.name, state, task.runs, task.cpu + run_time,
                    tuple(task.frames()))


def format_ps(infos: Iterable[TaskInfo], stacks: bool = False) -> str:
    """Render ps records as a table, the way ``ps`` would; stacks=True adds every frame."""
    lines = [f"{'TID':>5}  {'NAME':<24} {'STATE':<28} {'RUNS':>8} {'CPU(ms)':>9}  WHERE"]
    for info in infos:
        name = info.name if len(info.name) <= 24 else "…" + info.name[-23:]  # keep the end
        lines.append(f"{info.tid:>5}  {name:<24} {info.state[:28]:<28} "
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
