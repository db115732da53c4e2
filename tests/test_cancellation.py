"""CancelTask and Cancelled (issue 10): where a cancel lands, when it waits, what it leaves.

A cancel hits a task parked at a pyos blocking point at once and waits for the next one
otherwise; it is delivered once; the task may catch it and block again in clean-up; a
task it ends has not failed; it never takes back a wait that has completed.  Time is
virtual (nothing sleeps for real); interleavings are checked with ordered ``record``
lists; every case with a descriptor runs on both pollers.
"""

from __future__ import annotations

import logging

import pytest
from conftest import drain_socket
from helpers import KINDS, NOTHING, Park, Unpark, Waits, held, noop, value_after

import pyos
from pyos import (
    Cancelled,
    CancelTask,
    GetTid,
    KillTask,
    NewTask,
    ReadWait,
    Sleep,
    TaskCancelled,
    TaskError,
    TaskKilled,
    VirtualClock,
    WaitQueue,
    WaitTask,
)


@pytest.fixture
def waits(vsched: pyos.Scheduler, socketpair) -> Waits:
    return Waits(vsched, *socketpair)


def run_main(sched: pyos.Scheduler, main) -> None:
    sched.new(main, name="main")
    sched.mainloop()


# -- CancelTask's result --------------------------------------------------------------------
def test_cancel_task_is_true_for_a_live_task_false_otherwise() -> None:
    """True for a live task, and again while its cancel is on its way; False for an id
    never issued, a finished task, and the cancelled task once it has ended."""
    def main():
        done = yield NewTask(value_after(None, 0))
        live = yield NewTask(held(WaitQueue()))
        yield   # done finishes, live parks
        results = [(yield CancelTask(999)), (yield CancelTask(done)),
                   (yield CancelTask(live)), (yield CancelTask(live))]
        try:
            yield WaitTask(live)
        except TaskCancelled:
            results.append("TaskCancelled")
        results.append((yield CancelTask(live)))
        return results

    assert pyos.run(main(), clock=VirtualClock()) == [
        False, False, True, True, "TaskCancelled", False]


# -- Where and when it lands ----------------------------------------------------------------
@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", KINDS)
def test_cancel_hits_a_parked_task_at_once(kind: str, waits: Waits) -> None:
    """A task parked at any blocking point gets Cancelled at once (no time passes), and
    its waiter gets TaskCancelled, a TaskError."""
    sched, record = waits.sched, []

    def victim():
        try:
            yield waits.call(kind)
            record.append("woke")
        except Cancelled as exc:
            record.append(("cancelled", sched.clock.time(), exc.scope))
            raise

    def main():
        yield from waits.start()
        tid = yield NewTask(victim(), name="victim")
        yield
        record.append(sched.describe(sched._tasks[tid]) != "ready")   # it is parked
        record.append((yield CancelTask(tid)))
        try:
            yield WaitTask(tid)
        except TaskCancelled as exc:
            record.append((type(exc).__name__, isinstance(exc, TaskError), exc.tid, exc.name))
        yield from waits.finish()

    run_main(sched, main())
    assert record == [True, True, ("cancelled", 0.0, None), ("TaskCancelled", True, 3, "victim")]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", KINDS)
def test_a_cancelled_wait_leaves_nothing_behind(kind: str, vsched, socketpair, as_fd) -> None:
    """After the cancel: no poller registration (main waits on that socket at once), no
    timer, no queue slot, no join entry.  Descriptors as sockets and as numbers."""
    waits = Waits(vsched, *socketpair, as_fd)
    sched, seen = waits.sched, []

    def victim():
        yield waits.call(kind)

    def main():
        yield from waits.start()
        before = waits.left_behind()
        tid = yield NewTask(victim())
        yield
        seen.append(waits.left_behind() != before)   # the wait is in some table
        yield CancelTask(tid)
        seen.append(waits.left_behind())
        yield Sleep(0)   # the victim ends
        seen.append(waits.left_behind())
        seen.append((yield from waits.finish()))

    run_main(sched, main())
    assert seen == [True, NOTHING, NOTHING, b"ping"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", KINDS)
def test_a_pending_cancel_is_raised_at_the_next_blocking_point(kind: str, waits: Waits) -> None:
    """A cancel sent to a ready task waits; bare yields and calls that complete at once
    (GetTid, NewTask, WaitTask on a finished task, waking a queue) pass; the next blocking
    point raises it instead of blocking, even one that would complete at once (a readable
    socket, a writable one), and registers nothing."""
    sched, record = waits.sched, []

    def victim(finished):
        record.append("start")
        yield
        record.append(("tid", (yield GetTid())))
        record.append(("joined", (yield WaitTask(finished))))
        yield NewTask(noop())
        record.append(("woke", waits.q.wake()))
        try:
            yield waits.call(kind)
            record.append("blocked")
        except Cancelled:
            record.append(("cancelled", waits.left_behind()))
            raise

    def main():
        yield from waits.start()
        drain_socket(waits.b)      # writable
        waits.b.send(b"ping")      # and readable
        finished = yield NewTask(value_after("value", 0))
        yield
        tid = yield NewTask(victim(finished))
        record.append(("cancel", (yield CancelTask(tid))))
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")
        waits.hold.wake()

    run_main(sched, main())
    assert record == [("cancel", True), "start", ("tid", 4), ("joined", "value"), ("woke", 0),
                      ("cancelled", NOTHING), "TaskCancelled"]


def test_sleep_zero_is_a_blocking_point() -> None:
    """Sleep(0) raises a pending cancel; the bare yields before it do not."""
    record = []

    def victim():
        for i in range(3):
            record.append(i)
            yield
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")

    def main():
        tid = yield NewTask(victim())
        record.append((yield CancelTask(tid)))

    pyos.run(main(), clock=VirtualClock())
    assert record == [True, 0, 1, 2, "cancelled"]


def test_a_task_may_cancel_itself() -> None:
    """CancelTask of the caller returns True at once; Cancelled comes at its next block."""
    record = []

    def main():
        record.append((yield CancelTask((yield GetTid()))))
        record.append("goes on")
        yield Sleep(1)
        record.append("slept")

    with pytest.raises(TaskCancelled) as info:
        pyos.run(main(), clock=VirtualClock())
    assert record == [True, "goes on"]
    assert isinstance(info.value.__cause__, Cancelled)


def test_a_task_parked_by_a_user_defined_call_keeps_its_cancel_pending() -> None:
    """The kernel cannot undo a user call's wait: the cancel waits until the call wakes
    the task (with its value) and the task reaches a pyos blocking point."""
    record, parked = [], []

    def victim():
        record.append(("unparked", (yield Park(parked))))
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")
            raise

    def main():
        tid = yield NewTask(victim())
        yield
        record.append(("cancel", (yield CancelTask(tid))))
        for _ in range(3):
            yield Sleep(1)
        record.append(("still parked", len(parked)))
        yield Unpark(parked, "value")
        try:
            yield WaitTask(tid)
        except TaskCancelled:
            record.append("TaskCancelled")

    pyos.run(main(), clock=VirtualClock())
    assert record == [("cancel", True), ("still parked", 1), ("unparked", "value"),
                      "cancelled", "TaskCancelled"]


# -- Delivered once -------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["ready", "parked"])
def test_a_second_cancel_on_its_way_does_nothing_more(state: str) -> None:
    """Two CancelTasks before the first is raised: both True, one Cancelled; so the
    victim's clean-up, which blocks, runs to the end."""
    clock, record = VirtualClock(), []

    def victim():
        try:
            yield Sleep(3600)
        except Cancelled:
            record.append(("cancelled", clock.time()))
            yield Sleep(1)
            yield Sleep(0)
            return "cleaned up"

    def main():
        tid = yield NewTask(victim())
        if state == "parked":
            yield
        record.append([(yield CancelTask(tid)), (yield CancelTask(tid))])
        record.append((yield WaitTask(tid)))

    pyos.run(main(), clock=clock)
    assert record == [[True, True], ("cancelled", 0.0), "cleaned up"]
    assert clock.time() == 1.0


def test_a_cancel_after_the_first_was_raised_delivers_a_new_one() -> None:
    clock, record = VirtualClock(), []

    def victim():
        for i in range(2):
            try:
                yield Sleep(3600)
            except Cancelled:
                record.append(("cancelled", i, clock.time()))
        return "survived"

    def main():
        tid = yield NewTask(victim())
        yield
        for _ in range(2):
            record.append((yield CancelTask(tid)))
            yield Sleep(0)   # the victim catches it and parks again
        record.append((yield WaitTask(tid)))

    pyos.run(main(), clock=clock)
    assert record == [True, ("cancelled", 0, 0.0), True, ("cancelled", 1, 0.0), "survived"]


def test_clean_up_after_catching_cancelled_may_block() -> None:
    """Catching Cancelled and then sleeping and parking works; the task's value is its own
    (it did not end cancelled)."""
    clock, q, record = VirtualClock(), WaitQueue("q"), []

    def victim():
        try:
            yield Sleep(3600)
        except Cancelled:
            yield Sleep(5)
            slept = clock.time()
            got = yield q.park()
            return ("cleaned up", slept, got)

    def main():
        tid = yield NewTask(victim())
        yield
        yield CancelTask(tid)
        yield Sleep(6)
        record.append(q.wake("woken"))
        record.append((yield WaitTask(tid)))

    pyos.run(main(), clock=clock)
    assert record == [1, ("cleaned up", 5.0, "woken")]


# -- A cancelled task has not failed --------------------------------------------------------
def test_a_task_ended_by_cancelled_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing is logged for a cancelled task, nor for one raising Cancelled itself; a
    failing task beside them is (so the log is watched)."""
    caplog.set_level(logging.DEBUG, logger="pyos")

    def raises_cancelled():
        yield
        raise Cancelled("by hand")

    def fails():
        yield
        raise ValueError("boom")

    def main():
        tid = yield NewTask(held(WaitQueue()), name="victim")
        yield NewTask(raises_cancelled(), name="self-cancelled")
        yield NewTask(fails(), name="fails")
        yield
        yield CancelTask(tid)
        yield Sleep(1)

    pyos.run(main(), clock=VirtualClock())
    assert [r.getMessage() for r in caplog.records if r.name == "pyos"] == [
        "<Task 4 'fails'> failed"]


def test_wait_task_on_a_cancelled_task_raises_task_cancelled() -> None:
    """Both for a waiter already parked and for a WaitTask made after the task ended."""
    record = []

    def waiter(tid):
        try:
            yield WaitTask(tid)
        except TaskCancelled as exc:
            record.append(("waiter", exc.tid, str(exc)))

    def main():
        tid = yield NewTask(held(WaitQueue()), name="victim")
        late = yield NewTask(held(WaitQueue()), name="late")
        yield NewTask(waiter(tid))
        yield
        yield CancelTask(tid)
        yield CancelTask(late)
        yield Sleep(1)
        try:
            yield WaitTask(late)
        except TaskCancelled as exc:
            record.append(("late", exc.tid, exc.name, isinstance(exc, TaskError)))

    pyos.run(main(), clock=VirtualClock())
    assert record == [("waiter", 2, "task 2 (victim) was cancelled"), ("late", 3, "late", True)]


def test_run_raises_task_cancelled_when_its_target_is_cancelled() -> None:
    """Cancelled by another task; the others carry on first, and run() then raises."""
    record = []

    def other(main_tid):
        record.append(("cancel", (yield CancelTask(main_tid))))
        yield Sleep(10)
        record.append("other done")

    def main():
        yield NewTask(other((yield GetTid())))
        try:
            yield Sleep(3600)
        finally:
            record.append("main unwound")

    with pytest.raises(TaskCancelled) as info:
        pyos.run(main(), clock=VirtualClock())
    assert isinstance(info.value, TaskError)
    assert isinstance(info.value.__cause__, Cancelled)
    assert record == [("cancel", True), "main unwound", "other done"]


def test_cancelled_never_ends_mainloop(sched: pyos.Scheduler) -> None:
    """Cancelled ends only its task (unlike other BaseExceptions): mainloop goes on and
    returns normally."""
    record = []

    def raises_cancelled():
        yield
        raise Cancelled("by hand")

    def sibling():
        for i in range(3):
            yield Sleep(0)
            record.append(i)

    def main():
        tid = yield NewTask(held(WaitQueue()))
        yield
        yield CancelTask(tid)

    for target in (raises_cancelled(), main(), sibling()):
        sched.new(target)
    sched.mainloop()
    assert record == [0, 1, 2]
    assert not sched._tasks


# -- KillTask is still the hard unwind ------------------------------------------------------
@pytest.mark.parametrize("cancel", ["none", "pending", "thrown"])
def test_kill_task_is_still_the_hard_unwind(cancel: str) -> None:
    """KillTask runs finally blocks, never an `except Cancelled`, whether or not a cancel
    is on its way; the waiter gets TaskKilled, not TaskCancelled."""
    record = []

    def victim():
        try:
            yield               # ready here: a cancel waits
            yield Sleep(3600)   # parked here: a cancel is thrown in at once
        except Cancelled:
            record.append("caught Cancelled")
        finally:
            record.append("finally")

    def main():
        tid = yield NewTask(victim())
        yield
        if cancel != "pending":
            yield
        if cancel != "none":
            yield CancelTask(tid)
        record.append((yield KillTask(tid)))
        try:
            yield WaitTask(tid)
        except TaskKilled:
            record.append("TaskKilled")

    clock = VirtualClock()
    pyos.run(main(), clock=clock)
    assert record == ["finally", True, "TaskKilled"]
    assert clock.time() == 0.0


# -- A completed wait is never taken back ---------------------------------------------------
def test_data_ready_then_cancel_before_it_runs_gets_the_data(vsched: pyos.Scheduler,
                                                             socketpair) -> None:
    """The poll woke the reader; a cancel arriving before it runs waits for its next
    blocking point: it reads the data first."""
    a, b = socketpair
    record = []

    def reader():
        yield ReadWait(a)
        record.append(a.recv(10))
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")
            raise

    def main():
        tid = yield NewTask(reader())
        yield              # the reader parks
        b.send(b"data")
        yield              # the poll wakes it: it is ready, behind main
        record.append(("ready", vsched.describe(vsched._tasks[tid])))
        record.append((yield CancelTask(tid)))

    run_main(vsched, main())
    assert record == [("ready", "ready"), True, b"data", "cancelled"]


def test_a_sleep_that_fell_due_is_not_taken_back() -> None:
    clock, record = VirtualClock(), []

    def sleeper():
        yield Sleep(1)
        record.append(("slept", clock.time()))
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")

    def main():
        tid = yield NewTask(sleeper())
        yield Sleep(1)        # set before the sleeper's: due first in the same cycle
        record.append((yield CancelTask(tid)))

    pyos.run(main(), clock=clock)
    assert record == [True, ("slept", 1.0), "cancelled"]


def test_a_wake_up_with_a_value_is_not_taken_back() -> None:
    q, record = WaitQueue("q"), []

    def victim():
        record.append(("got", (yield q.park())))
        try:
            yield q.park()
        except Cancelled:
            record.append("cancelled")
            raise

    def main():
        tid = yield NewTask(victim())
        yield
        q.wake("value")
        record.append((yield CancelTask(tid)))
        yield Sleep(0)
        record.append(len(q))

    pyos.run(main(), clock=VirtualClock())
    assert record == [True, ("got", "value"), "cancelled", 0]


def test_an_outcome_delivered_to_a_waiter_is_not_taken_back() -> None:
    """The awaited task ended (the waiter is ready with its value) before the cancel."""
    record = []

    def child():
        yield
        return "child value"

    def waiter(tid):
        record.append(("joined", (yield WaitTask(tid))))
        try:
            yield Sleep(0)
        except Cancelled:
            record.append("cancelled")
            raise

    def main():
        c = yield NewTask(child())
        w = yield NewTask(waiter(c))
        yield             # the child yields once, the waiter parks
        yield             # the child returns; the waiter is ready, behind main
        record.append((yield CancelTask(w)))

    pyos.run(main(), clock=VirtualClock())
    assert record == [True, ("joined", "child value"), "cancelled"]


def test_run_names_the_cancelled_target_by_its_own_name() -> None:
    def target():
        yield pyos.CancelTask((yield pyos.GetTid()))
        yield pyos.Sleep(0)

    with pytest.raises(pyos.TaskCancelled) as info:
        pyos.run(target())
    assert info.value.name.endswith("target") and info.value.tid == 1
