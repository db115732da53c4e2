"""One alarm per task for all its timeout scopes (cancel.py's ``_Alarm``).

A scope that ends leaves its task's alarm in place, and a scope entered later with a
later deadline is covered by it: a server that puts every read under a deadline pays no
heap push or removal per read.  So an alarm may be early.  These tests pin down that an
early alarm never cancels anything, never delays a deadline, never makes the idle kernel
wait or virtual time jump, and that the heap does not grow.  Virtual time throughout;
``busy`` keeps the kernel from going idle while it moves the clock by hand, so that
alarms fall due in the run loop rather than being set right by the idle path.
"""

from __future__ import annotations

import pytest

import pyos
from pyos import (
    Cancelled,
    NewTask,
    Sleep,
    TaskTimeout,
    VirtualClock,
    WaitQueue,
    ignore_after,
    timeout_after,
)

STEP = 0.125   # a power of two: the clock's sums stay exact


def busy(clock: VirtualClock, steps: int = 200):
    """Never idle: move the clock by STEP each turn."""
    for _ in range(steps):
        clock.advance(STEP)
        yield


def test_a_task_under_a_deadline_per_operation_keeps_one_timer() -> None:
    """1,000 operations each under its own 60 s deadline: one heap entry, not 1,000."""
    sched, sizes = pyos.Scheduler(clock=VirtualClock()), []

    def main():
        for _ in range(1000):
            yield timeout_after(60, Sleep(0))
            sizes.append(len(sched._timers.heap))

    sched.new(main())
    sched.mainloop()
    sched.close()
    assert max(sizes) == 1
    assert len(sched._timers) == 0 and not sched._alarms   # the task ended


def test_an_early_alarm_does_not_cancel_and_the_deadline_comes_on_time() -> None:
    clock, record = VirtualClock(), []

    def main():
        yield NewTask(busy(clock))
        yield ignore_after(1, Sleep(0))          # the alarm: at 1; its scope ends at once
        start = clock.time()
        try:
            yield timeout_after(4, WaitQueue().park())   # due later than the alarm
        except TaskTimeout:
            record.append(clock.time() - start)

    pyos.run(main(), clock=clock)
    assert len(record) == 1 and 4.0 <= record[0] <= 4.0 + STEP   # (busy may run first)


def test_an_early_alarm_does_not_revive_an_expired_outer_scope() -> None:
    """The outer scope expired and the task went on inside it.  An alarm left by a scope
    that has ended falls due: it must not cancel the task again for the outer scope."""
    clock, record = VirtualClock(), []

    def main():
        yield NewTask(busy(clock))
        with (yield ignore_after(1)) as outer:
            try:
                yield WaitQueue().park()
            except Cancelled:
                record.append("outer expired")
            yield ignore_after(1, Sleep(0))      # an alarm 1 s on; its scope ends at once
            start = clock.time()
            try:
                yield timeout_after(3, WaitQueue().park())
            except Cancelled as exc:             # the outer scope owns it: it expired first
                record.append((clock.time() - start, exc.scope is outer))
        record.append(outer.expired)

    pyos.run(main(), clock=clock)
    assert record[0] == "outer expired" and record[2:] == [True]
    waited, owned = record[1]
    assert 3.0 <= waited <= 3.0 + STEP and owned         # (busy may run first)


def run_to_deadlock(sched: pyos.Scheduler, main) -> None:
    """Run main until the kernel reports that nothing can ever wake it."""
    sched.new(main)
    with pytest.raises(pyos.Deadlock):
        sched.mainloop()
    sched.close()


class JumpLog(VirtualClock):
    """A virtual clock that records where the idle kernel makes it jump."""

    def __init__(self) -> None:
        super().__init__()
        self.jumps: list[float] = []

    def jump_to(self, deadline: float) -> None:
        self.jumps.append(deadline)
        super().jump_to(deadline)


def test_the_idle_kernel_drops_the_alarm_of_ended_scopes() -> None:
    """Virtual time does not jump to the alarm that ended scopes left behind (on the real
    clock the kernel would have waited for it), and the deadlock is reported at once."""
    clock = JumpLog()
    sched = pyos.Scheduler(clock=clock)

    def main():
        yield ignore_after(1, Sleep(0))          # alarm at 1, scope ended
        with (yield ignore_after(2)):
            yield Sleep(0)
        yield WaitQueue().park()                 # nothing can wake it, nothing is due

    run_to_deadlock(sched, main())
    assert clock.time() == 0.0 and not [t for t in clock.jumps if t > 0]


def test_a_deadline_covered_by_an_early_alarm_comes_on_time_when_idle() -> None:
    clock, record = VirtualClock(), []

    def main():
        yield ignore_after(1, Sleep(0))          # alarm at 1, scope ended
        yield ignore_after(5, Sleep(10))         # covered by the early alarm at 1
        record.append(clock.time())

    pyos.run(main(), clock=clock)
    assert record == [5.0]


def test_a_nearer_deadline_moves_the_alarm_earlier() -> None:
    clock, record = VirtualClock(), []

    def main():
        with (yield ignore_after(10)):
            start = clock.time()
            try:
                yield timeout_after(2, Sleep(5))
            except TaskTimeout:
                record.append(clock.time() - start)
            yield Sleep(20)
        record.append(clock.time())

    pyos.run(main(), clock=clock)
    assert record == [2.0, 10.0]


def test_an_ended_task_leaves_no_alarm() -> None:
    sched = pyos.Scheduler(clock=VirtualClock())

    def child():
        with (yield ignore_after(100)):
            yield WaitQueue().park()

    def main():
        tid = yield NewTask(child())
        yield
        yield pyos.KillTask(tid)
        yield Sleep(1)

    sched.new(main())
    sched.mainloop()
    sched.close()
    assert sched.clock.time() == 1.0 and not sched._alarms and len(sched._timers) == 0


def test_an_overdue_alarm_does_not_cancel_again_for_a_zero_timeout_that_was_caught() -> None:
    """A zero timeout fires at the first blocking point, by itself, not by the alarm.  An
    alarm left by an ended scope, due but not yet fired when the zero scope is entered,
    must not cancel the task a second time for it once it caught its Cancelled."""
    clock, record = VirtualClock(), []

    def main():
        yield ignore_after(1, Sleep(0))          # the alarm: at 1; its scope ends at once
        clock.advance(1)                         # the alarm is due, and not yet fired
        with (yield ignore_after(0)):            # its deadline: 1, the alarm's
            try:
                yield Sleep(0)
            except Cancelled:
                record.append("zero")
            try:
                yield Sleep(0.5)                 # the alarm falls due meanwhile
                record.append("went on")
            except Cancelled:
                record.append("cancelled again")
        record.append(clock.time())

    pyos.run(main(), clock=clock)
    assert record == ["zero", "went on", 1.5]


def test_the_idle_kernel_drops_an_alarm_when_the_scopes_left_have_expired() -> None:
    """The task is still inside a scope that expired (it caught its Cancelled and went
    on), so its scopes are not all gone; but the alarm an ended scope left stands for
    none of them: virtual time does not jump to it, and the deadlock is reported at once."""
    clock = JumpLog()
    sched = pyos.Scheduler(clock=clock)

    def main():
        with (yield ignore_after(1)):
            try:
                yield WaitQueue().park()
            except Cancelled:
                pass                             # expired at 1, and goes on inside it
            yield ignore_after(5, Sleep(0))      # an alarm at 6, its scope ended
            yield WaitQueue().park()             # nothing can wake it, nothing is due

    run_to_deadlock(sched, main())
    assert clock.time() == 1.0 and not [t for t in clock.jumps if t > 1.0]


def test_ps_gives_the_deadline_still_to_come_not_an_expired_one() -> None:
    """Inside a scope that expired (its Cancelled caught), ps shows the next deadline,
    or none: not "deadline in 0.000s" for one that has already fired."""
    q, states = WaitQueue("jobs"), []

    def worker():
        with (yield ignore_after(1)):
            try:
                yield Sleep(5)
            except Cancelled:
                pass                               # goes on inside the expired scope
            yield timeout_after(3, q.park())
            yield q.park()

    def main():
        tid = yield NewTask(worker(), name="worker")
        yield Sleep(2)
        states.append({i.name: i.state for i in (yield pyos.Ps())}["worker"])
        q.wake()
        yield Sleep(1)
        states.append({i.name: i.state for i in (yield pyos.Ps())}["worker"])
        yield pyos.KillTask(tid)

    pyos.run(main(), clock=VirtualClock())
    assert states == ["waiting on WaitQueue 'jobs', deadline in 2.000s",
                      "waiting on WaitQueue 'jobs'"]
