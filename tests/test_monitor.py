"""The monitor console, through real sockets; and what it needs from the kernel."""

from __future__ import annotations

import socket
import threading

from pyos import ReadWait


# -- What the monitor needs from the kernel ---------------------------------------------
def test_a_call_from_outside_that_kills_the_last_task_ends_the_loop(sched):
    """Not a Deadlock: the kernel was blocked in a poll, and now no task is left."""
    a, b = socket.socketpair()

    def reader():
        yield ReadWait(a)

    tid = sched.new(reader())
    timer = threading.Timer(0.05, sched.call_soon_threadsafe, (sched.kill, tid))
    timer.start()
    try:
        sched.mainloop()
    finally:
        timer.join()
        a.close()
        b.close()
    assert sched.tasks() == []
