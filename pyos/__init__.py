"""pyos: a cooperative multitasking operating system in pure Python.

Tasks are generators or ``async def`` coroutines that talk to the kernel by yielding
system calls.  Start with ``pyos.run(main())``; see README.md for a tour.
"""

from .clock import VirtualClock
from .debug import TaskInfo, format_ps
from .errors import (
    BrokenLock,
    Cancelled,
    Deadlock,
    NoSuchTask,
    OutcomeForgotten,
    PyosError,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
    ResourceBusy,
    TaskCancelled,
    TaskError,
    TaskKilled,
    TaskTimeout,
)
from .groups import TaskGroup, first, gather
from .locks import Condition, Lock, RLock
from .queues import LifoQueue, PriorityQueue, Queue
from .runtime import current_tid
from .scheduler import Scheduler, run
from .sockets import Socket, listen, open_connection
from .sync import BoundedSemaphore, Event, Semaphore
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
    "BoundedSemaphore", "BrokenLock", "CancelTask", "Cancelled", "Condition", "Deadlock", "Event",
    "GetTid", "KillTask", "LifoQueue", "Lock", "NewTask", "NoSuchTask", "NotifyClosed",
    "OutcomeForgotten", "PriorityQueue", "Ps", "PyosError", "Queue", "QueueEmpty", "QueueFull",
    "QueueShutDown", "RLock", "ReadWait", "ResourceBusy", "Scheduler", "Semaphore", "Sleep",
    "Socket", "SystemCall", "TaskCancelled", "TaskError", "TaskGroup", "TaskInfo", "TaskKilled",
    "TaskTimeout", "TimeoutScope", "VirtualClock", "WaitQueue", "WaitTask", "WriteWait",
    "current_tid", "first", "format_ps", "gather", "ignore_after", "listen", "open_connection",
    "run", "timeout_after",
]
