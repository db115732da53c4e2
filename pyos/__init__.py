"""pyos: a cooperative multitasking operating system in pure Python.

Tasks are generators or ``async def`` coroutines that talk to the kernel by yielding
system calls.  Start with ``pyos.run(main())``; see README.md for a tour.
"""

from .clock import VirtualClock
from .commands import run_process
from .debug import TaskInfo, format_ps
from .errors import (
    BrokenLock,
    Cancelled,
    Deadlock,
    IncompleteRead,
    LimitOverrun,
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
from .gathering import first, gather
from .groups import TaskGroup
from .locks import Condition, Lock, RLock
from .pipes import PipeStream
from .process import Process, open_process
from .queues import LifoQueue, PriorityQueue, Queue
from .runner import run
from .runtime import current_tid
from .scheduler import Scheduler
from .serve import serve
from .signals import SignalWatch
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
from .threads import run_in_thread
from .timeouts import TimeoutScope, ignore_after, timeout_after
from .waits import WaitQueue
from .workers import run_workers

__all__ = [
    # the kernel
    "Scheduler", "VirtualClock", "current_tid", "run",
    # system calls
    "CancelTask", "GetTid", "KillTask", "NewTask", "NotifyClosed", "Ps", "ReadWait", "Sleep",
    "SystemCall", "WaitTask", "WriteWait",
    # waiting, cancellation and timeouts
    "TimeoutScope", "WaitQueue", "ignore_after", "timeout_after",
    # tasks that cooperate
    "BoundedSemaphore", "Condition", "Event", "LifoQueue", "Lock", "PriorityQueue", "Queue",
    "RLock", "Semaphore", "TaskGroup", "first", "gather",
    # sockets, streams and servers
    "Socket", "listen", "open_connection", "run_workers", "serve",
    # threads, processes and signals
    "PipeStream", "Process", "SignalWatch", "open_process", "run_in_thread", "run_process",
    # seeing inside
    "TaskInfo", "format_ps",
    # errors
    "BrokenLock", "Cancelled", "Deadlock", "IncompleteRead", "LimitOverrun", "NoSuchTask",
    "OutcomeForgotten", "PyosError", "QueueEmpty", "QueueFull", "QueueShutDown",
    "ResourceBusy", "TaskCancelled", "TaskError", "TaskKilled", "TaskTimeout",
]
