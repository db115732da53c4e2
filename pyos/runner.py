"""run(): the one call that makes a scheduler, runs a program on it, and closes it.

Most programs are one target that starts the rest; run() gives them its result, or
raises its exception, as a function call would.  A cancelled target is reported as
TaskCancelled (the Cancelled itself only makes sense inside the task).
"""

from __future__ import annotations

from typing import Any

from .errors import Cancelled, TaskCancelled
from .scheduler import Scheduler

__all__ = ["run"]


def run(target: Any, **options: Any) -> Any:
    """Run target, and every task it starts, to completion; return target's result.

    target's exception, if it fails, is raised here; it is also logged at once if other
    tasks are still running then, so it is never silent.  options go to ``Scheduler()``.
    """
    sched = Scheduler(**options)
    try:
        sched._main_tid = sched.new(target)
        name = sched._tasks[sched._main_tid].name
        sched.mainloop()
    finally:
        sched.close()
    value, exc = sched._outcomes.main
    if isinstance(exc, Cancelled):
        raise TaskCancelled(f"task {sched._main_tid} was cancelled",
                            sched._main_tid, name) from exc
    if exc is not None:
        raise exc
    return value
