"""pyos: a cooperative multitasking operating system in pure Python.

Tasks are generators or ``async def`` coroutines that talk to the kernel by yielding
system calls.  Start with ``pyos.run(main())``; see README.md for a tour.
"""

from .clock import VirtualClock
from .debug import TaskInfo, format_ps
from .errors import (
    Cancelled,
    Deadlock,
    IncompleteRead,
    LimitOverrun,
    NoSuchTask,
    OutcomeForgotten,
    PyosError,
    ResourceBusy,
    TaskCancelled,
    TaskError,
    TaskKilled,
    TaskTimeout,
)
from .runtime import current_tid
from .scheduler import Scheduler, run
from .signals import SignalWatch
from .sockets import Socket, listen, open_connection
from .syscalls import (
    CancelTask,
    GetTid,
    KillTask,
    NewTask,
    NotifyClosed,
    Ps,
    ReadWait,
    Sleep,
    SystemCall,
    WaitTask,
    WriteWait,
)
from .timeouts import TimeoutScope, ignore_after, timeout_after
from .waits import WaitQueue

__all__ = [
    # the kernel
    "Scheduler", "VirtualClock", "current_tid", "run",
    # system calls
    "CancelTask", "GetTid", "KillTask", "NewTask", "NotifyClosed", "Ps", "ReadWait", "Sleep",
    "SystemCall", "WaitTask", "WriteWait",
    # waiting, cancellation and timeouts
    "TimeoutScope", "WaitQueue", "ignore_after", "timeout_after",
    # sockets and streams
    "Socket", "listen", "open_connection",
    # the outside world
    "SignalWatch",
    # seeing inside
    "TaskInfo", "format_ps",
    # errors
    "Cancelled", "Deadlock", "IncompleteRead", "LimitOverrun", "NoSuchTask",
    "OutcomeForgotten", "PyosError", "ResourceBusy", "TaskCancelled", "TaskError",
    "TaskKilled", "TaskTimeout",
]
