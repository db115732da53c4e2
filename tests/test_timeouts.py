"""timeout_after and ignore_after (issue 10): deadlines on one operation or on a block.

Every deadline here is on virtual time, so each test is exact and instant; the one test
about real time (mainloop does not linger for a cancelled one-hour timeout) is bounded.
Cases with a descriptor run on both pollers.
"""

from __future__ import annotations

import math
import time
import types

import pytest
from conftest import drain_socket, fill_socket
from helpers import KINDS, NOTHING, Park, Unpark, Waits

import pyos
from pyos import (
    Cancelled,
    CancelTask,
    GetTid,
    NewTask,
    PyosError,
    ReadWait,
    Sleep,
    TaskCancelled,
    TaskTimeout,
    TimeoutScope,
    VirtualClock,
    WaitQueue,
    WaitTask,
    ignore_after,
    timeout_after,
)


def virtual() -> pyos.Scheduler:
    return pyos.Scheduler(clock=VirtualClock())


def sleeper(seconds: float, value: object):
    yield Sleep(seconds)
    return value


async def async_sleeper(seconds: float, value: object):
    await Sleep(seconds)
    return value


@types.coroutine
def make_op(kind: str, seconds: float, value: object):
    """An operation taking seconds and returning value: a generator, a coroutine, or a
    SystemCall (a WaitTask for a task that sleeps)."""
    if kind == "generator":
        return sleeper(seconds, value)
    if kind == "coroutine":
        return async_sleeper(seconds, value)
    tid = yield NewTask(sleeper(seconds, value))
    return WaitTask(tid)


OPS = ["generator", "coroutine", "syscall"]


def in_task(style: str, body):
    """A task of style ("generator" or "async") that runs body(op) -> the awaited thing."""
    if style == "generator":
        def task():
            return (yield (yield from body()))
        return task()

    async def atask():
        return await (await body())
    return atask()


# -- timeout_after(seconds, op) and ignore_after --------------------------------------------
@pytest.mark.parametrize("style", ["generator", "async"])
@pytest.mark.parametrize("op", OPS)
def test_timeout_after_returns_the_value_of_an_op_that_finishes_in_time(op, style) -> None:
    clock = VirtualClock()

    @types.coroutine
    def body():
        return timeout_after(5, (yield from make_op(op, 1, f"{op} value")))

    assert pyos.run(in_task(style, body), clock=clock) == f"{op} value"
    assert clock.time() == 1.0


@pytest.mark.parametrize("style", ["generator", "async"])
@pytest.mark.parametrize("op", OPS)
def test_timeout_after_raises_task_timeout_at_the_deadline(op, style) -> None:
    """TaskTimeout is a PyosError and a TimeoutError, caused by the Cancelled, raised at
    the deadline (the op went on for 10 seconds)."""
    clock, seen = VirtualClock(), []

    @types.coroutine
    def body():
        op_ = yield from make_op(op, 10, "late")
        try:
            yield timeout_after(1, op_)
        except TaskTimeout as exc:
            seen.append((clock.time(), isinstance(exc, PyosError), isinstance(exc, TimeoutError),
                         type(exc.__cause__), isinstance(exc.__cause__.scope, TimeoutScope),
                         repr(exc.__cause__.scope)))
        return GetTid()

    pyos.run(in_task(style, body), clock=clock)
    assert seen == [(1.0, True, True, Cancelled, True, "timeout_after(1)")]


@pytest.mark.parametrize("style", ["generator", "async"])
@pytest.mark.parametrize("op", OPS)
def test_ignore_after_returns_default_on_expiry(op, style) -> None:
    clock, seen = VirtualClock(), []

    @types.coroutine
    def body():
        seen.append((yield ignore_after(1, (yield from make_op(op, 10, "late")))))
        seen.append((yield ignore_after(1, (yield from make_op(op, 10, "late")), "default")))
        seen.append((yield ignore_after(3, (yield from make_op(op, 2, "in time")), "default")))
        seen.append(clock.time())
        return GetTid()

    pyos.run(in_task(style, body), clock=clock)
    assert seen == [None, "default", "in time", 4.0]


# -- The block forms ------------------------------------------------------------------------
def test_generator_block_form() -> None:
    """A deadline over several operations: the one running at the deadline is cut short,
    the rest of the block skipped; only that scope is marked expired."""
    clock, record = VirtualClock(), []

    def main():
        with (yield timeout_after(5)) as fast:
            yield Sleep(1)
        record.append(("fast", fast.expired, clock.time()))
        try:
            with (yield timeout_after(5)) as scope:
                for i in range(10):
                    yield Sleep(2)
                    record.append(i)
        except TaskTimeout:
            record.append(("timeout", scope.expired, clock.time()))
        with (yield ignore_after(1)) as ignored:
            yield Sleep(2)
            record.append("not reached")
        record.append(("ignored", ignored.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("fast", False, 1.0), 0, 1, ("timeout", True, 6.0), ("ignored", True, 7.0)]


def test_async_block_form() -> None:
    clock, record = VirtualClock(), []

    async def main():
        async with timeout_after(5) as fast:
            await Sleep(1)
        record.append(("fast", fast.expired, clock.time()))
        try:
            async with timeout_after(5) as scope:
                for i in range(10):
                    await Sleep(2)
                    record.append(i)
        except TaskTimeout:
            record.append(("timeout", scope.expired, clock.time()))
        async with ignore_after(1) as ignored:
            await Sleep(2)
            record.append("not reached")
        record.append(("ignored", ignored.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("fast", False, 1.0), 0, 1, ("timeout", True, 6.0), ("ignored", True, 7.0)]


def test_the_deadline_is_fixed_when_the_kernel_handles_the_scope() -> None:
    """Not when timeout_after() is called: made at 0, entered at 3, it fires at 4."""
    clock, record = VirtualClock(), []

    def main():
        op = timeout_after(1, Sleep(5))
        scope = ignore_after(1)
        yield Sleep(3)
        try:
            yield op
        except TaskTimeout:
            record.append(("op", clock.time()))
        yield Sleep(3)
        with (yield scope):
            yield Sleep(5)
        record.append(("scope", clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("op", 4.0), ("scope", 8.0)]


def test_entering_a_scope_twice_raises_runtime_error() -> None:
    """While it is open, after it closed, or in `with` without the kernel: RuntimeError at
    that point; and the deadline of a closed scope stays dead (it must not cancel the
    task later)."""
    clock, record = VirtualClock(), []

    def main():
        scope = timeout_after(5)
        with (yield scope):
            try:
                yield scope
            except RuntimeError:
                record.append("again inside")
            yield Sleep(1)
        try:
            yield scope
        except RuntimeError:
            record.append("again after")
        try:
            with timeout_after(5):
                pass
        except RuntimeError:
            record.append("not entered")
        yield Sleep(10)
        record.append(("slept", clock.time()))

    pyos.run(main(), clock=clock)
    assert record == ["again inside", "again after", "not entered", ("slept", 11.0)]


def test_entering_a_scope_twice_raises_runtime_error_in_async_tasks() -> None:
    record = []

    async def main():
        scope = timeout_after(5)
        async with scope:
            try:
                async with scope:
                    pass
            except RuntimeError:
                record.append("again inside")
        try:
            async with scope:
                pass
        except RuntimeError:
            record.append("again after")
        await Sleep(10)
        record.append("slept")

    pyos.run(main(), clock=VirtualClock())
    assert record == ["again inside", "again after", "slept"]


# -- What seconds may be --------------------------------------------------------------------
def test_seconds_none_sets_no_deadline_but_enclosing_ones_apply() -> None:
    clock, record = VirtualClock(), []

    def main():
        record.append((yield timeout_after(None, sleeper(100, "no deadline"))))
        with (yield ignore_after(1)) as outer:
            with (yield timeout_after(None)) as inner:
                yield Sleep(10)
        record.append((outer.expired, inner.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == ["no deadline", (True, False, 101.0)]


def test_an_infinite_timeout_never_fires() -> None:
    """On virtual time too: no jump to infinity and a TaskTimeout there.  A task parked
    under it that nothing else can wake is deadlocked, like one under None."""
    clock, record = VirtualClock(), []

    def main():
        record.append((yield timeout_after(math.inf, sleeper(5, "value"))))
        yield timeout_after(math.inf, WaitQueue("never").park())

    with pytest.raises(pyos.Deadlock, match="never"):
        pyos.run(main(), clock=clock)
    assert record == ["value"]
    assert clock.time() == 5.0


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan])
@pytest.mark.parametrize("make", [timeout_after, ignore_after])
def test_negative_or_nan_seconds_raise_value_error_where_the_call_is_made(make, seconds) -> None:
    """Raised by the call itself, outside any task: nothing reaches the kernel."""
    with pytest.raises(ValueError):
        make(seconds)
    with pytest.raises(ValueError):
        make(seconds, Sleep(1))


def test_bad_seconds_inside_a_task_fail_at_the_call() -> None:
    record = []

    def main():
        try:
            yield timeout_after(-1, Sleep(1))
        except ValueError:
            record.append("ValueError")
        record.append((yield GetTid()))

    pyos.run(main(), clock=VirtualClock())
    assert record == ["ValueError", 1]


def test_zero_fires_at_the_first_blocking_operation_inside() -> None:
    """Calls that complete at once and bare yields go on; the first block raises."""
    clock, record = VirtualClock(), []

    def op():
        record.append(("tid", (yield GetTid())))
        yield
        record.append("bare yield")
        yield Sleep(0)
        record.append("not reached")

    def main():
        try:
            yield timeout_after(0, op())
        except TaskTimeout:
            record.append(("timeout", clock.time()))
        record.append((yield ignore_after(0, Sleep(3600), "default")))
        record.append((yield ignore_after(0, Sleep(0), "even Sleep(0)")))

    pyos.run(main(), clock=clock)
    assert record == [("tid", 1), "bare yield", ("timeout", 0.0), "default", "even Sleep(0)"]
    assert clock.time() == 0.0


def test_zero_is_dropped_with_its_scope_if_nothing_blocked() -> None:
    """A zero timeout over calls that never block: the op's value, no timeout later, and
    no timer left counted (the timer table stays consistent)."""
    sched, record = virtual(), []

    def main():
        record.append((yield timeout_after(0, GetTid())) == 1)
        with (yield ignore_after(0)) as scope:
            yield
        record.append((scope.expired, len(sched._timers), len(sched._cancels)))
        yield Sleep(1)
        record.append(("slept", sched.clock.time()))

    sched.new(main())
    sched.mainloop()
    assert record == [True, (False, 0, 0), ("slept", 1.0)]


# -- Nested scopes --------------------------------------------------------------------------
def test_when_both_expire_together_the_outermost_owns_the_timeout() -> None:
    """The inner scope lets the Cancelled pass and is not marked expired."""
    clock, record = VirtualClock(), []

    def main():
        with (yield ignore_after(1)) as outer:
            try:
                with (yield timeout_after(1)) as inner:
                    yield Sleep(10)
            except TaskTimeout:
                record.append("inner raised TaskTimeout")
            except Cancelled as exc:
                record.append(("passed", exc.scope is outer))
                raise
        record.append((outer.expired, inner.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("passed", True), (True, False, 1.0)]


def test_an_inner_deadline_that_expires_alone_is_the_inner_scopes() -> None:
    clock, record = VirtualClock(), []

    def main():
        with (yield timeout_after(5)) as outer:
            try:
                yield timeout_after(1, Sleep(10))
            except TaskTimeout:
                record.append(("inner", clock.time()))
            yield Sleep(1)
        record.append((outer.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("inner", 1.0), (False, 2.0)]


def test_inner_deadline_first_but_outer_also_passed_when_handled() -> None:
    """Both deadlines have passed by the cycle that handles them (another task moved the
    clock on): the outer scope owns the timeout, though the inner one is due first."""
    clock, record = VirtualClock(), []

    def victim():
        try:
            with (yield timeout_after(2)) as outer:
                with (yield timeout_after(1)) as inner:
                    yield Sleep(10)
        except TaskTimeout:
            record.append(("timeout", outer.expired, inner.expired, clock.time()))

    def main():
        yield NewTask(victim())
        yield
        clock.advance(5)

    pyos.run(main(), clock=clock)
    assert record == [("timeout", True, False, 5.0)]


def test_an_outer_scope_that_expired_earlier_owns_a_later_inner_timeout() -> None:
    """The body caught the outer scope's Cancelled and went on; an inner deadline passing
    later is the outer scope's timeout too (it is the outermost expired one)."""
    clock, record = VirtualClock(), []

    def main():
        try:
            with (yield timeout_after(1)) as outer:
                try:
                    yield Sleep(10)
                except Cancelled:
                    record.append(("caught", clock.time()))
                with (yield timeout_after(1)) as inner:
                    yield Sleep(10)
        except TaskTimeout:
            record.append(("timeout", outer.expired, inner.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == [("caught", 1.0), ("timeout", True, False, 2.0)]


def test_a_pending_timeout_is_taken_over_by_an_outer_one_that_expires_later() -> None:
    """The inner deadline passes while the task runs (its cancel is pending); the outer
    one passes too before the task blocks: the outer one owns it."""
    clock, record = VirtualClock(), []

    def main():
        try:
            with (yield timeout_after(2)) as outer:
                with (yield timeout_after(1)) as inner:
                    clock.advance(1)
                    yield                  # the inner deadline passes: pending
                    clock.advance(1)
                    yield                  # the outer one passes too
                    record.append("still running")
                    yield Sleep(0)
        except TaskTimeout:
            record.append(("timeout", outer.expired, inner.expired, clock.time()))

    pyos.run(main(), clock=clock)
    assert record == ["still running", ("timeout", True, False, 2.0)]


def test_cancel_task_through_a_scope_that_has_not_expired_stays_a_cancel() -> None:
    """Not a TaskTimeout: the scope lets it pass; the task ends cancelled."""
    record = []

    def victim():
        try:
            with (yield timeout_after(5)) as scope:
                yield timeout_after(10, Sleep(3600))
        except TaskTimeout:
            record.append("TaskTimeout")
        except Cancelled as exc:
            record.append(("Cancelled", exc.scope, scope.expired))
            raise

    def main():
        tid = yield NewTask(victim())
        yield Sleep(1)
        yield CancelTask(tid)
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")

    pyos.run(main(), clock=VirtualClock())
    assert record == [("Cancelled", None, False), "TaskCancelled"]


def test_a_body_that_catches_the_cancelled_ends_normally_with_expired_true() -> None:
    clock, record = VirtualClock(), []

    def main():
        with (yield timeout_after(1)) as scope:
            try:
                yield Sleep(10)
            except Cancelled:
                record.append(("caught", clock.time()))
            yield Sleep(1)   # clean-up may block: the deadline is spent
        record.append(("after", scope.expired, clock.time()))
        return "normal"

    assert pyos.run(main(), clock=clock) == "normal"
    assert record == [("caught", 1.0), ("after", True, 2.0)]


# -- A completed wait is never taken back ---------------------------------------------------
def test_completion_and_deadline_in_the_same_cycle_completion_wins() -> None:
    """Sleep(1) under a 1-second timeout: the sleep's value; its timeout is dropped with
    the scope (a later block is not cancelled)."""
    clock, record = VirtualClock(), []

    def main():
        record.append((yield timeout_after(1, sleeper(1, "slept"))))
        with (yield timeout_after(1)) as scope:
            yield Sleep(1)
        record.append(scope.expired)
        yield Sleep(5)
        record.append(clock.time())

    pyos.run(main(), clock=clock)
    assert record == ["slept", False, 7.0]


def test_a_wake_up_and_a_deadline_in_the_same_cycle_wake_up_wins() -> None:
    clock, q, record = VirtualClock(), WaitQueue("q"), []

    def victim():
        record.append((yield timeout_after(1, q.park())))
        yield Sleep(5)
        record.append(("slept", clock.time()))

    def main():
        yield NewTask(victim())
        yield
        q.wake("value")
        clock.advance(1)     # the deadline is due in the cycle that runs the woken task

    pyos.run(main(), clock=clock)
    assert record == ["value", ("slept", 6.0)]


def test_data_ready_and_deadline_in_the_same_cycle_data_wins(vsched: pyos.Scheduler,
                                                             socketpair) -> None:
    a, b = socketpair
    record = []

    def reader():
        yield timeout_after(1, ReadWait(a))
        record.append(a.recv(10))
        yield Sleep(5)
        record.append(("slept", vsched.clock.time()))

    def main():
        yield NewTask(reader())
        yield
        b.send(b"data")
        vsched.clock.advance(1)   # readable, and the deadline due, in the same cycle

    vsched.new(main())
    vsched.mainloop()
    assert record == [b"data", ("slept", 6.0)]


def test_a_timeout_from_a_scope_that_has_exited_is_dropped() -> None:
    """The deadline passes while a user-defined call holds the task: pending.  The call
    wakes it with a value, the scope ends normally, and the timeout never arrives."""
    clock, record, parked = VirtualClock(), [], []

    def victim():
        with (yield timeout_after(1)) as scope:
            got = yield Park(parked)
        record.append((got, scope.expired))
        yield Sleep(5)
        record.append(("slept", clock.time()))

    def main():
        yield NewTask(victim())
        yield Sleep(2)
        yield Unpark(parked, "value")

    pyos.run(main(), clock=clock)
    assert record == [("value", False), ("slept", 7.0)]


def test_a_cancel_task_is_not_dropped_with_a_timeout_scope() -> None:
    """A deadline and the sleep under it fall due together (pending timeout, dropped when
    the scope exits); a CancelTask arriving meanwhile returns True and must still be
    delivered at the next blocking point, not dropped with the timeout."""
    clock, record = VirtualClock(), []

    def victim():
        try:
            with (yield timeout_after(1)) as scope:
                yield Sleep(1)
            record.append(("scope ended", scope.expired))
            yield Sleep(10)
            record.append("slept")
        except Cancelled as exc:
            record.append(("cancelled", exc.scope, clock.time()))
            raise

    def main():
        tid = yield NewTask(victim())
        yield Sleep(1)        # set before the victim's: main runs first at 1
        record.append((yield CancelTask(tid)))
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")

    pyos.run(main(), clock=clock)
    assert record == [True, ("scope ended", False), ("cancelled", None, 1.0), "TaskCancelled"]


def test_a_cancel_task_outranks_a_timeout_thrown_but_not_yet_raised() -> None:
    """The deadline threw its Cancelled into the parked task; a CancelTask before the
    task runs replaces it: the scope lets it pass (no TaskTimeout to catch and carry on
    from) and is not marked expired."""
    clock, record = VirtualClock(), []

    def victim():
        try:
            try:
                with (yield timeout_after(1)) as scope:
                    yield Sleep(10)
            except TaskTimeout:
                record.append("TaskTimeout")
            yield Sleep(10)
            record.append("slept")
        except Cancelled as exc:
            record.append(("cancelled", str(exc), scope.expired, clock.time()))
            raise

    def main():
        tid = yield NewTask(victim())
        yield Sleep(1)        # main is made ready at 1 before the deadline throws
        record.append((yield CancelTask(tid)))
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")

    pyos.run(main(), clock=clock)
    assert record == [True, ("cancelled", "task 2 was cancelled", False, 1.0), "TaskCancelled"]


def test_a_deadline_after_a_pending_cancel_task_leaves_it_a_cancel() -> None:
    """The CancelTask came first: the timeout passing meanwhile does not make it one."""
    clock, record = VirtualClock(), []

    def victim():
        try:
            with (yield timeout_after(1)) as scope:
                clock.advance(1)
                yield
                yield Sleep(0)
        except Cancelled as exc:
            record.append(("cancelled", exc.scope, scope.expired))
            raise

    def main():
        tid = yield NewTask(victim())
        yield CancelTask(tid)
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")

    pyos.run(main(), clock=clock)
    assert record == [("cancelled", None, False), "TaskCancelled"]


# -- Nothing left behind --------------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", KINDS)
def test_a_timed_out_wait_leaves_nothing_behind(kind, vsched, socketpair, as_fd) -> None:
    """No poller registration (main waits on that socket at once), no timer (neither the
    wait's nor the scope's), no queue slot, no join entry."""
    waits, seen = Waits(vsched, *socketpair, as_fd), []

    def main():
        yield from waits.start()
        try:
            yield timeout_after(1, waits.call(kind))
        except TaskTimeout:
            seen.append(("timeout", vsched.clock.time()))
        seen.append(waits.left_behind())
        seen.append((yield from waits.finish()))

    vsched.new(main())
    vsched.mainloop()
    assert seen == [("timeout", 1.0), NOTHING, b"ping"]


def test_a_timed_out_wait_task_leaves_the_outcome_to_be_collected() -> None:
    """No join entry: the task's outcome is kept for a later WaitTask, not handed to the
    waiter that left."""
    record = []

    def main():
        child = yield NewTask(sleeper(5, "child value"))
        record.append((yield ignore_after(1, WaitTask(child), "gave up")))
        yield Sleep(10)
        record.append((yield WaitTask(child)))

    pyos.run(main(), clock=VirtualClock())
    assert record == ["gave up", "child value"]


@pytest.mark.timeout(10)
def test_mainloop_does_not_linger_for_a_cancelled_one_hour_timeout() -> None:
    """On the real clock: one-hour deadlines whose scopes ended leave nothing the kernel
    waits for.  The program ends at once, and a task that then blocks for good is a
    Deadlock at once, not an hour later."""
    for park in (False, True):
        sched = pyos.Scheduler()

        def main(park=park):
            yield timeout_after(3600, Sleep(0))
            with (yield ignore_after(3600)):
                yield Sleep(0)
            if park:
                yield WaitQueue().park()

        start = time.monotonic()
        sched.new(main())
        try:
            if park:
                with pytest.raises(pyos.Deadlock):
                    sched.mainloop()
            else:
                sched.mainloop()
        finally:
            sched.close()
        assert time.monotonic() - start < 5
        assert len(sched._timers) == 0


def test_virtual_time_does_not_jump_to_a_cancelled_deadline() -> None:
    clock = VirtualClock()

    def victim():
        yield timeout_after(3600, WaitQueue().park())

    def main():
        tid = yield NewTask(victim())
        yield
        yield CancelTask(tid)

    pyos.run(main(), clock=clock)
    assert clock.time() == 0.0


def test_a_task_waiting_under_a_deadline_on_a_socket_is_woken_by_it(vsched, socketpair) -> None:
    """The scope's timer does not get in the way of the descriptor (both pollers)."""
    a, b = socketpair
    fill_socket(a)
    record = []

    def writer():
        yield timeout_after(10, pyos.WriteWait(a))
        record.append(("writable", vsched.clock.time()))

    def main():
        yield NewTask(writer())
        yield Sleep(1)
        drain_socket(b)

    vsched.new(main())
    vsched.mainloop()
    assert record == [("writable", 1.0)]


def test_the_op_form_driven_outside_a_task_says_so_and_closes_its_op() -> None:
    """An op under timeout_after runs in a pyos task; driven by anything else (a loop, or
    another framework), it raises a RuntimeError that says so, and the op it was given
    is closed, not left to warn that it was never awaited."""
    def op():
        yield Sleep(1)

    gen = op()
    with pytest.raises(RuntimeError, match=r"timeout_after\(1\) runs an op in a pyos task"):
        next(timeout_after(1, gen))
    assert gen.gi_frame is None                    # closed
    with pytest.raises(RuntimeError, match=r"ignore_after\(2\) runs an op"):
        next(ignore_after(2, Sleep(1)))
