"""VirtualClock (issue 10): time that passes only when the kernel is idle, or by hand.

The kernel jumps straight to the next deadline when no task can run and a
non-blocking poll finds no descriptor ready: an hour's sleep takes no real time, and a
task woken by a descriptor runs before any jump.  Cases with a descriptor run on both
pollers.
"""

from __future__ import annotations

import math
import time

import pytest

import pyos
from pyos import NewTask, Ps, ReadWait, Sleep, VirtualClock, WaitQueue


def test_starts_at_zero_and_moves_only_when_told() -> None:
    clock = VirtualClock()
    assert (clock.time(), clock.virtual) == (0.0, True)
    clock.advance(1.5)
    clock.advance(0)
    assert clock.time() == 1.5
    assert repr(clock) == "VirtualClock(time=1.5)"


@pytest.mark.parametrize(("seconds", "error"), [(-1, ValueError), (-0.5, ValueError),
                                              (math.nan, ValueError), (True, TypeError),
                                              ("1", TypeError)])
def test_advance_refuses_what_is_not_a_forward_span(seconds, error) -> None:
    clock = VirtualClock()
    with pytest.raises(error):
        clock.advance(seconds)
    assert clock.time() == 0.0


def test_an_endless_sleep_is_not_a_deadline_to_jump_to() -> None:
    """Sleep(inf) never wakes: the clock does not jump to infinity, and a task that only
    sleeps forever is reported as deadlocked rather than woken at t=inf."""
    clock = VirtualClock()

    def forever():
        yield pyos.Sleep(math.inf)

    with pytest.raises(pyos.Deadlock, match="sleeping for forever more"):
        pyos.run(forever(), clock=clock)
    assert clock.time() == 0.0


def test_idle_on_virtual_time_still_finds_a_plainly_closed_descriptor(poller) -> None:
    """The audit for descriptors closed behind the kernel's back runs on virtual time too."""
    import socket

    a, b = socket.socketpair()
    record: list[object] = []

    def reader():
        try:
            yield pyos.ReadWait(a)
        except OSError as exc:
            record.append((exc.errno, clock.time()))

    def closer():
        yield
        a.close()                         # plainly: the kernel is not told
        yield pyos.Sleep(3600)

    clock = VirtualClock()
    sched = pyos.Scheduler(poller=poller, clock=clock)
    sched.audit_after = 0
    sched.new(reader())
    sched.new(closer())
    sched.mainloop()
    sched.close()
    b.close()
    assert record == [(9, 0.0)]           # EBADF, long before the hour was up


def test_the_default_clock_is_real_time() -> None:
    sched = pyos.Scheduler()
    try:
        assert sched.clock.virtual is False
        before = sched.clock.time()
        assert sched.clock.time() >= before
        assert abs(sched.clock.time() - time.perf_counter()) < 1
    finally:
        sched.close()


@pytest.mark.timeout(10)
def test_an_hours_sleep_takes_no_real_time() -> None:
    clock, record = VirtualClock(), []

    def main():
        yield Sleep(3600)
        record.append(clock.time())
        yield Sleep(0.25)
        record.append(clock.time())

    start = time.monotonic()
    pyos.run(main(), clock=clock)
    assert record == [3600.0, 3600.25]
    assert time.monotonic() - start < 1   # (a sanity bound: it is in fact a few ms)


def test_scheduler_and_run_take_the_clock() -> None:
    clock = VirtualClock()
    sched = pyos.Scheduler(clock=clock)
    assert sched.clock is clock

    def main():
        yield Sleep(10)
        return clock.time()

    sched.new(main())
    sched.mainloop()
    sched.close()
    assert clock.time() == 10.0
    assert pyos.run(main(), clock=clock) == 20.0   # run() on the same clock, from 10


def test_sleepers_wake_in_deadline_order_each_at_its_time() -> None:
    clock, record = VirtualClock(), []

    def sleeper(label, seconds):
        yield Sleep(seconds)
        record.append((label, clock.time()))

    def main():
        for label, seconds in (("c", 3), ("a", 1), ("b", 2), ("a2", 1)):
            yield NewTask(sleeper(label, seconds))

    pyos.run(main(), clock=clock)
    assert record == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]


def test_time_does_not_pass_while_a_task_can_run() -> None:
    """A sleeper of 1 second waits out a task that never blocks, however long it takes:
    no jump while anything is ready."""
    clock, record = VirtualClock(), []

    def busy():
        for i in range(200):
            if i % 50 == 0:
                record.append(("busy", i, clock.time()))
            yield

    def sleeper():
        yield Sleep(1)
        record.append(("slept", clock.time()))

    def main():
        yield NewTask(sleeper())
        yield NewTask(busy())

    pyos.run(main(), clock=clock)
    assert record == [("busy", 0, 0.0), ("busy", 50, 0.0), ("busy", 100, 0.0),
                      ("busy", 150, 0.0), ("slept", 1.0)]


def test_advance_by_hand_makes_timers_due_at_the_next_cycle() -> None:
    clock, record = VirtualClock(), []

    def sleeper():
        yield Sleep(10)
        record.append(("slept", clock.time()))

    def main():
        yield NewTask(sleeper())
        yield
        clock.advance(10)
        record.append("advanced")
        for i in range(3):   # main stays ready: the sleeper wakes among its turns
            yield
            record.append(i)

    pyos.run(main(), clock=clock)
    assert record == ["advanced", 0, ("slept", 10.0), 1, 2]


def test_a_jump_never_goes_back() -> None:
    """Advanced by hand past a sleeper's deadline: the sleeper wakes, time stays put."""
    clock, record = VirtualClock(), []

    def main():
        yield NewTask(late())
        yield
        clock.advance(5)

    def late():
        yield Sleep(1)
        record.append(clock.time())

    pyos.run(main(), clock=clock)
    assert record == [5.0]


@pytest.mark.timeout(10)
def test_a_descriptor_ready_is_served_before_the_clock_jumps(vsched: pyos.Scheduler,
                                                            socketpair) -> None:
    """A reader whose socket became readable runs at time 0, then the clock jumps to the
    sleeper's deadline; a reader woken later (by the sleeper) at that time."""
    a, b = socketpair
    record = []

    def reader(label):
        yield ReadWait(a)
        record.append((label, a.recv(10), vsched.clock.time()))

    def sleeper():
        yield Sleep(60)
        record.append(("slept", vsched.clock.time()))
        b.send(b"later")

    def main():
        yield NewTask(sleeper())
        yield NewTask(reader("first"))
        yield
        b.send(b"now")      # readable while a timer is pending: no jump past it
        yield Sleep(1)
        record.append(("main", vsched.clock.time()))
        yield NewTask(reader("second"))

    vsched.new(main())
    vsched.mainloop()
    assert record == [("first", b"now", 0.0), ("main", 1.0), ("slept", 60.0),
                      ("second", b"later", 60.0)]


def test_ps_counts_sleep_in_virtual_seconds() -> None:
    clock, seen = VirtualClock(), []

    def main():
        yield NewTask(sleeper_for(7200))
        yield Sleep(1800)
        seen.extend(i.state for i in (yield Ps()))

    def sleeper_for(seconds):
        yield Sleep(seconds)

    pyos.run(main(), clock=clock)
    assert seen == ["running", "sleeping for 1.5h more"]
    assert clock.time() == 7200.0


def test_nothing_to_do_and_no_deadline_is_still_a_deadlock() -> None:
    """Virtual time does not hide a deadlock: with no timer there is nowhere to jump."""
    clock = VirtualClock()

    def main():
        yield Sleep(5)
        yield WaitQueue("never").park()

    with pytest.raises(pyos.Deadlock, match="never"):
        pyos.run(main(), clock=clock)
    assert clock.time() == 5.0
