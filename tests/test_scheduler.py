"""The kernel: task ids, pyos.run, round-robin order, fault isolation, deadlock, idling, scale.

Covers the Scheduler/run part of the spec and items 5, 7, 8, 9, plus the
calls-per-turn rule and the bookkeeping of outcomes nobody collects (item 3).
Orderings are checked exactly with ``record`` lists; no test asserts on speed.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
import tracemalloc

import pytest

import pyos
from pyos import GetTid, KillTask, NewTask, Sleep, SystemCall, TaskKilled, WaitTask


class Echo(SystemCall):
    """A user-defined call that completes at once and returns its argument."""

    def __init__(self, value: object) -> None:
        self.value = value

    def handle(self) -> None:
        self.task.sendval = self.value
        self.sched.schedule(self.task)


def _steps(record: list[object], label: str, n: int):
    for i in range(n):
        record.append((label, i))
        yield


def _noop():
    yield


def _value_after(value: object, steps: int = 1):
    for _ in range(steps):
        yield
    return value


def _run(sched: pyos.Scheduler, *targets: object) -> None:
    """Start targets as tasks, in order, and run them all to completion."""
    for target in targets:
        sched.new(target)
    sched.mainloop()


# -- Scheduler(), new(), mainloop(), task ids -------------------------------------------
def test_each_scheduler_numbers_its_tasks_from_one() -> None:
    """sched.new returns 1, 2, ... per scheduler: the id GetTid reports inside the task."""
    first, second = pyos.Scheduler(), pyos.Scheduler()
    seen: list[int] = []

    def report():
        seen.append((yield GetTid()))

    try:
        first.mainloop()  # nothing to run: returns at once
        assert [first.new(report()), first.new(report()), second.new(report())] == [1, 2, 1]
        first.mainloop()
        second.mainloop()
    finally:
        first.close()
        second.close()
    assert seen == [1, 2, 1]


def test_task_ids_are_never_reused(sched: pyos.Scheduler) -> None:
    """Finished tasks' ids are not handed out again, within a run or after it."""
    tids: list[int] = []

    def spawner():
        for _ in range(50):
            tids.append((yield NewTask(_noop())))
            yield

    tids.append(sched.new(spawner()))
    sched.mainloop()
    tids.append(sched.new(_noop()))
    sched.mainloop()
    assert len(tids) == 52 and tids == sorted(set(tids))  # distinct and increasing


def test_new_rejects_non_coroutines_and_uses_no_id(sched: pyos.Scheduler) -> None:
    """sched.new(x) raises TypeError for a non-generator; no task is made, no id used."""
    for bad in (42, _noop, None):
        with pytest.raises(TypeError):
            sched.new(bad)
    assert sched.new(_noop()) == 1
    sched.mainloop()


# -- pyos.run -----------------------------------------------------------------------------
def test_run_returns_the_targets_value_after_all_it_spawned() -> None:
    """run() returns target's value, but only once every task it started has finished."""
    record: list[object] = []

    def main():
        yield NewTask(_steps(record, "child", 5))
        return "main done"

    assert pyos.run(main()) == "main done"
    assert record == [("child", i) for i in range(5)]


def test_run_raises_the_original_exception() -> None:
    """run() raises the very exception object the target raised, not a wrapper."""
    raised: list[BaseException] = []

    async def main():
        await GetTid()
        error = KeyError("original")
        raised.append(error)
        raise error

    with pytest.raises(KeyError) as info:
        pyos.run(main())
    assert info.value is raised[0]


# -- Ordering -----------------------------------------------------------------------------
def test_ready_tasks_run_round_robin_in_fifo_order(sched: pyos.Scheduler) -> None:
    """Each bare yield sends a task to the back of the queue: a, b, c, a, b, c, ..."""
    record: list[object] = []
    _run(sched, *(_steps(record, label, 3) for label in "abc"))
    assert record == [(label, i) for i in range(3) for label in "abc"]


def test_immediate_calls_continue_the_turn_and_bare_yields_end_it(sched: pyos.Scheduler) -> None:
    """Calls that complete at once (NewTask, GetTid, a user call) let the caller go on; a bare
    yield sends it behind the others, and behind the task it spawned."""
    record: list[object] = []

    def main():
        yield NewTask(_steps(record, "child", 1))
        record.append(("main", (yield GetTid()), (yield Echo("echo"))))
        yield
        record.append("main again")

    _run(sched, main(), _steps(record, "other", 2))
    assert record == [("main", 1, "echo"), ("other", 0), ("child", 0), "main again", ("other", 1)]


@pytest.mark.parametrize("budget", [None, 5])
def test_calls_per_turn_limits_a_run_of_immediate_calls(
    sched: pyos.Scheduler, budget: int | None
) -> None:
    """After calls_per_turn immediate calls in a row the task yields, then goes on intact."""
    if budget is not None:
        sched.calls_per_turn = budget
    limit = sched.calls_per_turn
    assert pyos.Scheduler.calls_per_turn == 64
    record: list[object] = []

    def caller():
        for i in range(2 * limit + 10):
            record.append((yield Echo(i)))

    _run(sched, caller(), _steps(record, "b", 1))
    assert record == [*range(limit), ("b", 0), *range(limit, 2 * limit + 10)]


# -- 5. Fault isolation -------------------------------------------------------------------
def test_uncaught_exception_is_logged_and_others_keep_running(
    sched: pyos.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing task ends alone: logged on "pyos" at ERROR with exc_info; others finish."""
    record: list[object] = []

    def bad():
        yield
        raise ZeroDivisionError("task bug")

    sched.new(bad())
    sched.new(_steps(record, "good", 5))
    with caplog.at_level(logging.ERROR, logger="pyos"):
        sched.mainloop()
    assert record == [("good", i) for i in range(5)]
    errors = [r for r in caplog.records if r.name == "pyos" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ZeroDivisionError)
    assert "in bad\n" in "".join(traceback.format_exception(errors[0].exc_info[1]))


# -- 8. The end of mainloop: deadlock and re-entry ----------------------------------------
@pytest.mark.timeout(10)
def test_deadlock_after_a_killed_sleeper_is_detected(sched: pyos.Scheduler) -> None:
    """A waits for B, B for a sleeper that is killed, then for A: Deadlock (a RuntimeError)
    at once, naming each blocked task and what it waits for."""
    def alpha():
        yield WaitTask(2)

    def beta():
        try:
            yield WaitTask(3)
        except TaskKilled:
            yield WaitTask(1)

    def killer():
        yield
        killed.append((yield KillTask(3)))

    killed: list[bool] = []

    sched.new(alpha(), name="alpha")
    sched.new(beta(), name="beta")
    sched.new(_sleeper(3600), name="sleeper")
    sched.new(killer())
    with pytest.raises(pyos.Deadlock) as info:
        sched.mainloop()
    message = str(info.value)
    assert killed == [True] and isinstance(info.value, RuntimeError)
    for text in ("alpha", "beta", "waiting for task 2", "waiting for task 1"):
        assert text in message
    assert "sleeper" not in message


def _sleeper(seconds: float):
    yield Sleep(seconds)


def test_mainloop_inside_a_task_raises_runtime_error_there(sched: pyos.Scheduler) -> None:
    """Calling mainloop (or pyos.run) from a running task raises RuntimeError in it."""
    caught: list[str] = []

    def nested():
        for attempt in (sched.mainloop, lambda: pyos.run(_noop())):
            try:
                attempt()
            except RuntimeError:
                caught.append("caught")
            yield

    _run(sched, nested(), _noop())
    assert caught == ["caught", "caught"]


# -- 7. Idling ----------------------------------------------------------------------------
def test_idle_kernel_blocks_instead_of_spinning(sched: pyos.Scheduler, socketpair) -> None:
    """One task waits to read, one sleeps 0.3 s then writes: almost no CPU meanwhile."""
    a, b = socketpair
    got: list[bytes] = []

    def reader():
        yield pyos.ReadWait(a)
        got.append(a.recv(10))

    def writer():
        yield Sleep(0.3)
        b.send(b"wake")

    sched.new(reader())
    sched.new(writer())
    wall, cpu = time.perf_counter(), time.process_time()
    sched.mainloop()
    assert got == [b"wake"] and time.perf_counter() - wall >= 0.3
    assert time.process_time() - cpu < 0.1


# -- 9. Scale -----------------------------------------------------------------------------
def test_fifty_thousand_tasks_run_to_completion() -> None:
    """50,000 tasks created up front all run every step."""
    count = [0]

    def worker():
        count[0] += 1
        yield
        count[0] += 1

    sched = pyos.Scheduler()
    try:
        for _ in range(50_000):
            sched.new(worker())
        sched.mainloop()
    finally:
        sched.close()
    assert count[0] == 100_000


# -- 3. Outcomes nobody collects -----------------------------------------------------------
def test_uncollected_none_results_keep_memory_flat() -> None:
    """120k short handlers nobody waits for: no results kept, few tasks, flat memory."""
    total, marks = 120_000, (12_000, 120_000)
    seen: dict[int, tuple[int, int, int]] = {}
    sched = pyos.Scheduler()

    def server():
        for i in range(1, total + 1):
            yield NewTask(_noop())
            if i % 32 == 0:
                yield  # a real server would wait for its next client here
            if i in marks:
                gc.collect()
                seen[i] = (tracemalloc.get_traced_memory()[0], len(sched._results),
                           len(sched._tasks))

    tracemalloc.start()
    try:
        sched.new(server())
        sched.mainloop()
    finally:
        tracemalloc.stop()
        sched.close()
    (early, early_results, early_tasks), (late, late_results, late_tasks) = (
        seen[marks[0]], seen[marks[1]])
    assert early_results == late_results == 0
    assert early_tasks < 1000 and late_tasks < 1000
    assert late - early < 1_000_000  # ~100k more tasks: proportional growth would be >10 MB


def test_keep_results_forgets_the_oldest_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """None results are not kept; beyond keep_results others go oldest first, with a warning."""
    sched = pyos.Scheduler(keep_results=3)
    kept: list[object] = []
    values: list[object] = []

    def main():
        tids = []
        for value in (10, None, 20, 30, 40, 50):
            tids.append((yield NewTask(_value_after(value))))
        for _ in range(3):
            yield
        kept.append(sorted(sched._results))
        for tid in tids:
            values.append((yield WaitTask(tid)))

    sched.new(main())
    with caplog.at_level(logging.WARNING, logger="pyos"):
        sched.mainloop()
    sched.close()
    assert kept == [[5, 6, 7]]  # tids 2..7; 3 returned None
    assert values == [None, None, None, 30, 40, 50]
    assert len([r for r in caplog.records if "forgot" in r.getMessage()]) == 2


def test_collected_outcomes_are_not_reported_as_uncollected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A parent that waits for every value-returning child gets no 'forgot' warnings."""
    sched = pyos.Scheduler(keep_results=10)
    values: list[object] = []

    def parent():
        for i in range(30):
            tid = yield NewTask(_value_after(i, 1 + i % 2))
            if i % 3 == 0:
                yield
                yield  # some children finish before the wait, some after
            values.append((yield WaitTask(tid)))

    sched.new(parent())
    with caplog.at_level(logging.WARNING, logger="pyos"):
        sched.mainloop()
    sched.close()
    assert values == list(range(30))
    assert [r.getMessage() for r in caplog.records if "forgot" in r.getMessage()] == []
