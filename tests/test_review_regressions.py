"""Faults a review found in the kernel's leaner hot path (a pending exception as a _Raise
frame, system calls handled in _trap, run()'s outcome kept by the kernel, shared join
waits, broken waiters failed in _poll_io, epoll's per-direction tables), each pinned by a
test that failed before its fix; the last two pin behaviour nothing else covered.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback

import pytest
from helpers import run

import pyos
from pyos import GetTid, KillTask, NewTask, ReadWait, SystemCall, TaskError, WaitTask, WriteWait


# -- Faults -------------------------------------------------------------------------------
def test_stopiteration_raised_by_handle_is_not_turned_into_a_return_value(sched):
    """A handle() that raises StopIteration (here a bug: next() on an exhausted iterator)
    raises at the caller's yield like any other error: a thrown StopIteration must not be
    taken for a sub-coroutine returning, which would make the yield evaluate to None."""
    class Exhausted(SystemCall):
        def handle(self):
            next(iter(()))

    record: list[object] = []

    def main():
        try:
            record.append(("returned", (yield Exhausted())))
        except StopIteration:
            record.append("raised")

    run(sched, main())
    assert record == ["raised"]


def test_killed_task_that_resists_unwinding_never_runs_again(sched):
    """A victim whose frame keeps swallowing GeneratorExit is abandoned by kill(); its
    stale ready-queue entry must not resume that still-suspended frame: a killed task's
    code never runs again."""
    record: list[object] = []

    def stubborn():
        for _ in range(10):
            try:
                yield                       # a bare yield: it sits in the ready queue
                record.append("ran")
            except GeneratorExit:
                record.append("swallowed")

    def killer(victim):
        yield
        record.append(("kill", (yield KillTask(victim))))
        for _ in range(3):
            yield

    gen = stubborn()
    run(sched, killer(sched.new(gen)))
    after_kill = record[record.index(("kill", True)) + 1:]
    for _ in range(20):  # end it ourselves, so the garbage collector has nothing to report
        try:
            next(gen)
        except StopIteration:
            break
    assert "ran" not in after_kill


def test_killing_a_broken_waiter_leaves_the_new_waiter_on_its_fd_alone(sched, socketpair):
    """A waits on a; a is closed behind the kernel's back and its number reused; B waits on
    the new file, which moves A to poller.broken, but A keeps wait ("read", fd) until the
    next _poll_io.  Killing A in that window must not cancel (fd, "read"), which is now
    B's: B would never wake although its socket is readable (a hang in a server)."""
    a, _ = socketpair
    fd, record = a.fileno(), []
    x, y = socket.socketpair()

    def old_waiter():
        try:
            yield ReadWait(a)
            record.append("A woke")
        except OSError:
            record.append("A failed")

    def new_waiter():
        yield                     # A is blocked
        a.close()
        os.dup2(x.fileno(), fd)   # the same number, another socket ...
        y.send(b"x")              # ... which is readable
        yield ReadWait(fd)
        record.append("B woke")

    def killer(victim):
        yield
        record.append(("kill A", (yield KillTask(victim))))   # same cycle as B's wait

    with x, y:
        try:
            victim = sched.new(old_waiter())
            run(sched, new_waiter(), killer(victim))
        except pyos.Deadlock:
            record.append("deadlock")
        finally:
            os.close(fd)
    assert record == [("kill A", True), "B woke"]


def test_trace_says_blocked_for_a_user_defined_call_that_parks_the_task(sched, caplog):
    """A Beazley-style call that parks its caller is traced "-> blocked in Park()", not
    "-> ready": the trace line is written after the kernel records what parked it."""
    parked: list[object] = []

    class Park(SystemCall):
        def handle(self):
            parked.append(self.task)

    class WakeAll(SystemCall):
        def handle(self):
            while parked:
                self.sched.schedule(parked.pop())
            self.sched.schedule(self.task)

    def sleeper():
        yield Park()

    def waker():
        yield
        yield WakeAll()

    sched.trace = True
    with caplog.at_level(logging.INFO, logger="pyos"):
        sched.new(sleeper(), name="sleeper")
        run(sched, waker())
    lines = [r.getMessage() for r in caplog.records if "Park()" in r.getMessage()]
    assert lines == ["<Task 1 'sleeper'> Park() -> blocked in Park()"]


def test_a_delivered_error_points_at_the_task_not_at_pyos(sched):
    """An error the kernel throws into a task (here TaskError from WaitTask) carries only
    the task's own frames: the line its traceback ends with is the task's yield, not
    pyos's _Raise frame or the kernel loop it passed through."""
    record: list[object] = []

    def failing():
        yield
        raise KeyError("k")

    def waiter(child):
        try:
            yield WaitTask(child)
        except TaskError as exc:
            record.append(traceback.extract_tb(exc.__traceback__)[-1].name)

    def main():
        child = yield NewTask(failing())
        yield NewTask(waiter(child))

    logging.getLogger("pyos").disabled = True   # failing()'s error is logged: not the point
    try:
        run(sched, main())
    finally:
        logging.getLogger("pyos").disabled = False
    assert record == ["waiter"]


def test_the_error_traced_for_a_call_is_the_one_the_caller_gets(sched, caplog):
    """Two throws before the task runs: handle() delivers TaskError (join on a failed
    task) and then raises.  The task gets the second, ValueError, which is also the one
    the trace names: the last throw wins, as before."""
    class JoinThenFail(SystemCall):
        def __init__(self, tid):
            self.tid = tid

        def handle(self):
            self.sched.join(self.task, self.tid)
            raise ValueError("handle failed")

    def failing():
        raise KeyError("k")
        yield

    record: list[object] = []

    def main():
        child = yield NewTask(failing())
        yield
        try:
            yield JoinThenFail(child)
        except Exception as exc:
            record.append(type(exc).__name__)

    sched.trace = True
    with caplog.at_level(logging.INFO, logger="pyos"):
        run(sched, main())
    [line] = [r.getMessage() for r in caplog.records if "JoinThenFail" in r.getMessage()]
    assert "raised ValueError" in line
    assert record == ["ValueError"]


# -- Regression: what the new code does right, and nothing else pinned ------------------------
def test_run_raises_taskkilled_when_its_target_is_killed(caplog):
    """run() keeps its target's outcome in _outcomes.main: a target killed by another task
    makes run() raise TaskKilled, logged by nobody; the next run() starts clean."""
    def main():
        me = yield GetTid()
        yield NewTask(assassin(me))
        for _ in range(10):
            yield

    def assassin(tid):
        yield KillTask(tid)

    def fine():
        yield
        return "second"

    with caplog.at_level(logging.ERROR, logger="pyos"), pytest.raises(pyos.TaskKilled):
        pyos.run(main())
    assert pyos.run(fine()) == "second"
    assert not caplog.records


@pytest.mark.parametrize("poller", ["epoll"])
def test_reader_and_writer_on_one_fd_named_two_ways(sched, socketpair):
    """epoll's per-direction tables: a reader waiting on the socket object and a writer on
    its raw number, at once and over many rounds, with events nobody waits for in between
    (the lazy shrink); each wakes only when its direction is ready, and both finish."""
    a, b = socketpair
    rounds, record = 30, {"read": 0, "write": 0}

    def reader():
        for _ in range(rounds):
            yield ReadWait(a)
            assert a.recv(1) == b"r"
            record["read"] += 1

    def writer():
        for _ in range(rounds):
            try:
                for _ in range(10_000):
                    a.send(b"w" * 65536)
            except BlockingIOError:
                pass
            yield WriteWait(a.fileno())
            record["write"] += 1

    def peer():
        for step in range(20 * rounds):
            if record == {"read": rounds, "write": rounds}:
                return
            if step % 3 == 0:
                b.send(b"r")
            elif step % 3 == 1:
                try:
                    while b.recv(1 << 20):
                        pass
                except BlockingIOError:
                    pass
            yield

    run(sched, reader(), writer(), peer())
    assert record == {"read": rounds, "write": rounds}
