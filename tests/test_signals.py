"""SignalWatch: signals sent to this very process with os.kill, read by tasks.

Each test sets SIGUSR1 and SIGUSR2 to a handler of its own first, and checks it is back
afterwards: a watch must leave no handler behind.  Every wait for a signal is bounded by
a timeout, so a lost signal fails its test instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import pyos
from pyos import (
    CancelTask,
    KillTask,
    NewTask,
    Ps,
    SignalWatch,
    Sleep,
    TaskTimeout,
    WaitTask,
    ignore_after,
    timeout_after,
)

USR1, USR2 = signal.SIGUSR1, signal.SIGUSR2


_stray: list[int] = []


def _sentinel(signum, frame):   # the handler before a test: must come back, and get nothing
    _stray.append(signum)


@pytest.fixture(autouse=True)
def handlers():
    """Known handlers on SIGUSR1/2 before each test; the test must leave them in place."""
    old = {s: signal.signal(s, _sentinel) for s in (USR1, USR2)}
    _stray.clear()
    yield
    left = {s: signal.getsignal(s) for s in (USR1, USR2)}
    for s, handler in old.items():
        signal.signal(s, handler)
    assert left == {USR1: _sentinel, USR2: _sentinel}, "a watch left its handler installed"
    assert _stray == [], "a signal sent inside a watch reached the old handler"


def kill(signo: int) -> None:
    os.kill(os.getpid(), signo)


def test_get_returns_the_signal_and_the_block_restores_handlers(sched):
    got = []

    def main():
        with (yield SignalWatch(USR1, USR2)) as sigs:
            assert signal.getsignal(USR1) is not _sentinel
            kill(USR2)
            got.append((yield sigs.get()))
        got.append(signal.getsignal(USR2))

    sched.new(main())
    sched.mainloop()
    assert got == [USR2, _sentinel]
    assert type(got[0]) is signal.Signals


def test_pending_signals_are_distinct_and_in_arrival_order(sched):
    got = []

    def main():
        with (yield SignalWatch(USR1, USR2)) as sigs:
            for signo in (USR2, USR1, USR2, USR1):
                kill(signo)
            yield Sleep(0)   # delivered at the next cycle, merged while unread
            for _ in range(3):
                got.append((yield ignore_after(0.05, sigs.get())))

    sched.new(main())
    sched.mainloop()
    assert got == [USR2, USR1, None]


def test_a_signal_from_another_thread_wakes_a_kernel_blocked_in_its_poll(sched):
    """The only task waits for a signal: not a deadlock; the signal ends the poll."""
    got = []

    def main():
        with (yield SignalWatch(USR1)) as sigs:
            start = time.monotonic()
            timer.start()
            got.append((yield sigs.get()))   # no timer in the kernel: only the signal
            got.append(time.monotonic() - start)

    tid = sched.new(main())
    timer = threading.Timer(0.1, kill, (USR1,))
    rescue = threading.Timer(5, sched.call_soon_threadsafe, (sched.kill, tid))
    rescue.start()       # should the signal be lost: end the test, don't hang it
    try:
        sched.mainloop()     # a Deadlock here would mean the wait is not seen as external
    finally:
        rescue.cancel()
        timer.join()
    assert got[0] == USR1
    assert 0.05 < got[1] < 5


def test_ps_says_which_signals_a_task_waits_for(sched):
    states = []

    def waiter(sigs):
        return (yield sigs.get())

    def main():
        with (yield SignalWatch(USR1, USR2, signal.SIGHUP)) as sigs:
            tid = yield NewTask(waiter(sigs), name="waiter")
            yield
            states.extend(i.state for i in (yield Ps()) if i.tid == tid)
            kill(USR1)
            states.append((yield timeout_after(5, WaitTask(tid))))

    sched.new(main())
    sched.mainloop()
    assert states == ["waiting for signal SIGUSR1, SIGUSR2 or SIGHUP", USR1]


def test_a_timed_out_get_leaves_no_waiter_and_loses_no_signal(sched):
    got = []

    def main():
        with (yield SignalWatch(USR1)) as sigs:
            try:
                yield timeout_after(0.02, sigs.get())
            except TaskTimeout:
                got.append("timed out")
            got.append(len(sigs._queue))
            kill(USR1)
            yield Sleep(0)
            got.append((yield timeout_after(1, sigs.get())))

    sched.new(main())
    sched.mainloop()
    assert got == ["timed out", 0, USR1]


def _getter(sigs, record):
    record.append((yield sigs.get()))
    try:
        yield Sleep(5)
    except pyos.Cancelled:
        record.append("cancelled")


def test_a_cancel_after_the_handoff_does_not_take_the_signal_back(sched):
    record = []

    def main():
        with (yield SignalWatch(USR1)) as sigs:
            tid = yield NewTask(_getter(sigs, record))
            yield                      # it parks in get()
            kill(USR1)
            yield                      # next cycle: handed to it; this task runs first
            assert len(sigs._queue) == 0 and record == []
            yield CancelTask(tid)
            yield timeout_after(5, WaitTask(tid))

    sched.new(main())
    sched.mainloop()
    assert record == [USR1, "cancelled"]


def test_a_kill_after_the_handoff_puts_the_signal_back_first(sched):
    first, mine = [], []

    def main():
        with (yield SignalWatch(USR1, USR2)) as sigs:
            a = yield NewTask(_getter(sigs, first))
            yield                      # it parks in get()
            kill(USR1)
            kill(USR2)
            yield                      # both delivered: USR1 handed to a, USR2 pending
            yield KillTask(a)          # a never saw USR1: it is pending again, first
            for _ in range(2):
                mine.append((yield timeout_after(5, sigs.get())))

    sched.new(main())
    sched.mainloop()
    assert (first, mine) == ([], [USR1, USR2])


def test_a_kill_after_the_handoff_passes_the_signal_to_the_next_getter(sched):
    first, second = [], []

    def main():
        with (yield SignalWatch(USR1)) as sigs:
            a = yield NewTask(_getter(sigs, first))
            b = yield NewTask(_getter(sigs, second))
            yield                      # both park in get(), a first
            kill(USR1)
            yield                      # handed to a, which has not run yet
            yield KillTask(a)          # b, parked next, gets it
            assert len(sigs._queue) == 0
            yield CancelTask(b)
            yield timeout_after(5, WaitTask(b))

    sched.new(main())
    sched.mainloop()
    assert (first, second) == ([], [USR1, "cancelled"])


def test_async_with_and_async_for(sched):
    got = []

    async def main():
        async with SignalWatch(USR1, USR2) as sigs, timeout_after(5):
            kill(USR1)
            kill(USR2)
            async for signo in sigs:
                got.append(signo)
                if len(got) == 2:
                    break
        got.append(signal.getsignal(USR1))

    sched.new(main())
    sched.mainloop()
    assert got == [USR1, USR2, _sentinel]


def test_handlers_come_back_when_the_block_fails_or_the_task_is_killed(sched):
    def failing():
        with (yield SignalWatch(USR1)):
            raise ValueError("boom")

    def parked():
        with (yield SignalWatch(USR2)) as sigs:
            yield sigs.get()

    def main():
        tid = yield NewTask(failing())
        with pytest.raises(pyos.TaskError):
            yield WaitTask(tid)
        assert signal.getsignal(USR1) is _sentinel
        tid = yield NewTask(parked())
        yield
        assert signal.getsignal(USR2) is not _sentinel
        yield KillTask(tid)

    sched.new(main())
    sched.mainloop()
    assert signal.getsignal(USR2) is _sentinel


def test_a_signal_that_cannot_be_caught_installs_nothing(sched):
    errors = []

    def main():
        try:
            yield SignalWatch(USR1, signal.SIGKILL)
        except OSError as exc:
            errors.append(type(exc))
        errors.append(signal.getsignal(USR1))

    sched.new(main())
    sched.mainloop()
    assert errors == [OSError, _sentinel]


def test_only_the_main_thread_may_watch_signals(sched):
    errors = []

    def main():
        try:
            yield SignalWatch(USR1)
        except RuntimeError as exc:
            errors.append(str(exc))

    sched.new(main())
    thread = threading.Thread(target=sched.mainloop)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and "main thread" in errors[0]


def test_misuse_is_an_error_where_it_is_made(sched):
    errors = []

    def main():
        watch = SignalWatch(USR1)
        with pytest.raises(RuntimeError, match="through the kernel"):
            with watch:
                pass
        with (yield watch) as sigs:
            pass
        try:
            yield sigs.get()        # the block is over
        except RuntimeError as exc:
            errors.append("not open" in str(exc))
        try:
            yield watch             # a watch is entered once
        except RuntimeError as exc:
            errors.append("already entered" in str(exc))

    with pytest.raises(ValueError):
        SignalWatch()
    with pytest.raises(ValueError):
        SignalWatch(12345)
    sched.new(main())
    sched.mainloop()
    assert errors == [True, True]


def test_a_getter_left_parked_when_the_block_ends_gets_an_error(sched):
    """Nothing could ever wake it: an error, not a task that waits forever."""
    errors = []

    def getter(sigs):
        try:
            yield sigs.get()
        except RuntimeError as exc:
            errors.append(str(exc))

    def main():
        with (yield SignalWatch(USR1)) as sigs:
            tid = yield NewTask(getter(sigs))
            yield
        yield timeout_after(5, WaitTask(tid))

    sched.new(main())
    sched.mainloop()
    assert errors == ["SignalWatch(SIGUSR1) was closed while this task waited in get()"]
