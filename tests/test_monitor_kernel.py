"""What the monitor needs from the kernel: a call from outside may end the last task,
and the loop counts its cycles and polls (for ``stats``).
"""

from __future__ import annotations

import socket
import threading

from pyos import ReadWait


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


def test_the_loop_counts_its_cycles_and_its_polls(sched):
    """Cycles that only run tasks make no poll; once a task waits on I/O, each one polls."""
    a, b = socket.socketpair()

    def spinner():
        yield
        yield

    def reader():
        yield ReadWait(a)

    def writer():
        yield
        yield
        yield
        b.send(b"x")

    sched.new(spinner())
    sched.mainloop()
    assert (sched.cycles, sched.polls) == (3, 0)
    sched.new(reader())
    sched.new(writer())
    sched.mainloop()
    a.close()
    b.close()
    assert (sched.cycles, sched.polls) == (3 + 5, 4)   # the first cycle needed no poll
