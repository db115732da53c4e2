"""Seeing inside the kernel: ps records, wait descriptions and deadlock reports.

When a cooperative program hangs, the question is always "what is every task waiting
for, and where?".  These helpers answer it from the task's own bookkeeping
(``task.wait``, its trampoline stack) and cost nothing until someone asks.
"""

from __future__ import annotations

import logging
import os
import reprlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .task import Task

__all__ = [
    "TaskInfo", "bad_yield", "deadlock_report", "describe_resumed", "format_ps", "report_slow",
    "task_info",
]

log = logging.getLogger("pyos")


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
        return _where(self.stack)


_PYOS_DIR = os.path.dirname(os.path.abspath(__file__))


def _where(stack: Iterable[tuple[str, int, str]]) -> str:
    """The innermost frame outside pyos (else the innermost), as file:line:function."""
    stack = list(stack)
    for frame in reversed(stack):
        if os.path.dirname(os.path.abspath(frame[0])) != _PYOS_DIR:
            return _frame(frame)
    return _frame(stack[-1]) if stack else "-"


def _frame(frame: tuple[str, int, str]) -> str:
    filename, line, func = frame
    return f"{os.path.basename(filename)}:{line}:{func}"


def describe_resumed(task: Task) -> str:
    """What a system call that let its caller go on handed it, for the trace."""
    if task.done:
        return "exited"
    if task.pending_error is not None:   # e.g. WaitTask on a task that failed
        return f"resumed with exception {task.pending_error!r}"
    return f"resumed with {reprlib.repr(task.sendval)}"


def task_info(task: Task, state: str, run_time: float = 0.0) -> TaskInfo:
    """Snapshot one task for ``ps``; state is what it does, in words."""
    return TaskInfo(task.tid, task.name, state, task.runs, task.cpu + run_time,
                    tuple(task.frames()))


def format_ps(infos: Iterable[TaskInfo], stacks: bool = False) -> str:
    """Render ps records as a table, the way ``ps`` would; stacks=True adds every frame."""
    lines = [f"{'TID':>5}  {'NAME':<24} {'STATE':<28} {'RUNS':>8} {'CPU(ms)':>9}  WHERE"]
    for info in infos:
        name = info.name if len(info.name) <= 24 else "…" + info.name[-23:]  # keep the end
        lines.append(f"{info.tid:>5}  {name:<24} {info.state:<28} "
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


def deadlock_report(tasks: Iterable[Task], describe: Callable[[Task], str]) -> str:
    """Explain why none of tasks can run: cycles in the wait-for graph, then every task.

    Each wait names the task it waits for, if any (``wait.blocker``: the task a WaitTask
    names, a lock's owner), so a cycle of tasks each holding what the next one wants is
    found whatever the waits are.
    """
    tasks = list(tasks)
    by_tid = {task.tid: task for task in tasks}

    def line(task: Task) -> str:
        where = task.frames()   # the program's line, not the pyos Lock or socket under it
        at = f" at {_where(where)}" if where else ""
        return f"task {task.tid} ({task.name}) {describe(task)}{at}"

    cycles, seen = [], set()
    for start in tasks:                  # follow "waits for" edges; each task has at most one
        path: list[Task] = []
        node: Task | None = start
        while node is not None and node.tid not in seen and node not in path:
            path.append(node)
            blocker = getattr(node.wait, "blocker", None)
            node = by_tid.get(blocker) if blocker is not None else None
        if node is not None and node in path:
            cycle = path[path.index(node):]
            cycles.append(" -> ".join(f"task {t.tid} ({t.name})" for t in cycle + cycle[:1]))
        seen.update(t.tid for t in path)
    parts = [f"no task can ever run again: {len(tasks)} blocked with nothing to wake them"]
    parts += [f"wait-for cycle: {cycle}" for cycle in cycles]
    parts += ["  " + line(task) for task in tasks]
    return "\n".join(parts)


def report_slow(batch: list[Task], elapsed: float) -> None:
    """The kernel went too long without polling: name who ran, and where the last is.

    A batch is timed as a whole (scheduler.py), so with several tasks in it the hog is
    one of them.
    """
    last = batch[-1]
    where = last.frames()
    at = "{}:{} in {}".format(*where[-1]) if where else None
    if len(batch) == 1:
        log.warning("%r ran %.0f ms without yielding; %s", last, elapsed * 1000,
                    f"it is now at {at}" if at else "then exited")
    else:
        names = ", ".join(map(repr, batch[:3])) + (", ..." if len(batch) > 3 else "")
        log.warning("%d tasks ran %.0f ms between two polls without yielding (%s); "
                    "the last, %r, %s", len(batch), elapsed * 1000, names, last,
                    f"is now at {at}" if at else "then exited")
