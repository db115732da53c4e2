"""pyos: a cooperative multitasking operating system in pure Python.

Tasks are generators or ``async def`` coroutines that talk to the kernel by yielding
system calls.  Start with ``pyos.run(main())``; see README.md for a tour.
"""

from .debug import TaskInfo, format_ps
from .errors import Deadlock, NoSuchTask, PyosError, ResourceBusy, TaskError, TaskKilled
from .scheduler import Scheduler, run
from .sockets import Socket, listen, open_connection
from .syscalls import (
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
from .workers import run_workers

__all__ = [
    "Deadlock", "GetTid", "KillTask", "NewTask", "NoSuchTask", "NotifyClosed", "Ps",
    "PyosError", "ReadWait", "ResourceBusy", "Scheduler", "Sleep", "Socket", "SystemCall",
    "TaskError", "TaskInfo", "TaskKilled", "WaitTask", "WriteWait", "format_ps", "listen",
    "open_connection", "run", "run_workers",
]
