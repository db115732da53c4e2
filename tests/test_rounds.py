"""Rounds: phase 3 runs the next cycle's batch at once when phases 1 and 2 have nothing to do.

A hand-off between two tasks (a queue's put to a waiting get, a lock's release to the
next waiter) makes one task ready at a time, so each hand-off used to cost a whole
cycle.  When no descriptor is waited on, no timer is due and no other thread has
called in, the next cycle's phases 1 and 2 would do nothing: ``_run_ready`` then runs
the tasks its batch made ready itself, in the same order, counting a cycle for each
round.  These tests check that it does, and that each of those conditions ends the
rounds at once, so that nothing waits for a busy pair of tasks to finish.
"""

from __future__ import annotations

import socket
import time

import pytest

import pyos
from pyos import KillTask, Sleep

PAIRS = 200   # hand-offs each test's two tasks make, at most


def ping_pong(record: list[object], until: list[bool]):
    """Two tasks passing a number back and forth through two queues, one at a time, for
    PAIRS hand-offs or until until[0] is set; None tells the echo to end."""
    ping, pong = pyos.Queue(), pyos.Queue()

    def echo():
        while (item := (yield ping.get())) is not None:
            yield pong.put(item)

    def lead():
        yield pyos.NewTask(echo())
        for i in range(PAIRS):
            if until[0]:
                record.append(("lead stopped", i))
                break
            yield ping.put(i)
            yield pong.get()
        else:
            record.append(("lead done", PAIRS))
        yield ping.put(None)

    return lead()


def counted_polls(sched: pyos.Scheduler) -> list[int]:
    """Count the calls of sched's phase 1."""
    calls, poll = [0], sched._poll_io

    def counting() -> None:
        calls[0] += 1
        poll()

    sched._poll_io = counting  # type: ignore[method-assign]
    return calls


def test_hand_offs_run_in_rounds_and_each_round_counts_as_a_cycle(sched):
    """With nothing to poll for, 200 hand-offs take a few calls of phase 1, not 400;
    the cycle count, which the monitor shows, still has one for each."""
    record: list[object] = []
    calls = counted_polls(sched)
    sched.new(ping_pong(record, [False]))
    sched.mainloop()
    assert record == [("lead done", PAIRS)]
    assert calls[0] <= 3
    assert sched.cycles >= 2 * PAIRS


def test_a_timer_falling_due_ends_the_rounds():
    """A sleeper whose time comes while two tasks hand off to each other wakes within
    a cycle: it stops them at once, before they have made their 200 hand-offs."""
    sched, record, until = pyos.Scheduler(), [], [False]

    def sleeper():
        yield Sleep(0.002)
        until[0] = True
        record.append("woke")

    try:
        sched.new(sleeper())
        sched.new(busy(ping_pong(record, until)))
        sched.mainloop()
    finally:
        sched.close()
    assert record[0] == "woke"
    assert record[1][0] == "lead stopped" and record[1][1] < PAIRS


def busy(target):
    """target, with 0.1 ms of CPU spent before each of its steps (the echo's too)."""
    def spend() -> None:
        end = time.perf_counter() + 0.0001
        while time.perf_counter() < end:
            pass

    value = None
    while True:
        spend()
        try:
            call = target.send(value)
        except StopIteration as stop:
            return stop.value
        value = yield call


def after_steps(n: int, fn):
    """A task that runs fn() at its n-th step: at a known point of the pair's hand-offs."""
    for _ in range(n):
        yield
    fn()


@pytest.mark.parametrize("poller", ["select", "epoll"])
def test_a_descriptor_waited_on_ends_the_rounds(poller):
    """A task waiting to read is served by the next poll once its data arrives, not
    after the pair has finished: while it waits, the pair runs one batch per cycle."""
    sched, record, until = pyos.Scheduler(poller=poller), [], [False]
    a, b = socket.socketpair()

    def reader():
        data = yield pyos.Socket(a).recv(10)
        until[0] = True
        record.append(data)

    try:
        sched.new(reader())
        sched.new(ping_pong(record, until))
        sched.new(after_steps(10, lambda: b.send(b"x")))
        sched.mainloop()
    finally:
        sched.close()
        a.close()
        b.close()
    assert record[0] == b"x"
    assert record[1][0] == "lead stopped" and record[1][1] < 20


def test_a_call_from_another_thread_ends_the_rounds(sched):
    """call_soon_threadsafe's function runs at the next cycle's phase 1, even while two
    tasks hand off to each other without a poll (here it is called by a third task at
    its 10th step, so that the moment is known)."""
    record, until = [], [False]

    def stop() -> None:
        until[0] = True
        record.append("called")

    sched.new(ping_pong(record, until))
    sched.new(after_steps(10, lambda: sched.call_soon_threadsafe(stop)))
    sched.mainloop()
    assert record[0] == "called"
    assert record[1][0] == "lead stopped" and record[1][1] < 20


def test_no_round_runs_after_the_last_task_has_exited():
    """A task killed while it sat in the ready queue leaves a stale entry there.  When the
    killer was the last task, the main loop ended (``while self._tasks``): no further
    cycle, and the dead task never "ran" again.  A round must not run that entry either:
    it counted a cycle the loop never made, and a second run for a task that had ended."""
    sched = pyos.Scheduler(clock=pyos.VirtualClock())

    def victim():
        for _ in range(10):
            yield

    def killer():
        yield KillTask(1)

    try:
        v = sched._tasks[sched.new(victim())]
        sched.new(killer())
        sched.mainloop()
    finally:
        sched.close()
    assert (sched.cycles, v.runs) == (1, 1)   # its one step, in the one cycle
