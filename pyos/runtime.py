"""Which kernel is running in this thread, and which task it is running now.

Library code that only yields system calls sometimes needs to ask the running kernel
something without a round trip through the ready queue: a lock checks who is releasing
it, a socket tells the poller it is about to close.  This module answers from a
thread-local slot that ``Scheduler.mainloop()`` fills and empties.  It imports nothing
else of pyos, so every layer may use it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["current_kernel", "current_tid"]

_local = threading.local()


def current_kernel() -> Any:
    """The scheduler running in this thread, or None outside ``mainloop()``."""
    return getattr(_local, "kernel", None)


def set_kernel(kernel: Any) -> None:
    """Called by the scheduler as its main loop starts (kernel) and ends (None)."""
    _local.kernel = kernel


def current_tid() -> int:
    """The id of the task running now.  RuntimeError outside a running task."""
    kernel = getattr(_local, "kernel", None)
    task = kernel.current if kernel is not None else None
    if task is None:
        raise RuntimeError("current_tid() called outside a running pyos task")
    return task.tid
