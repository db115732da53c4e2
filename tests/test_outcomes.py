"""Outcomes nobody collects (spec item 3; issue 9, faults 5 and 6): every outcome is kept
up to keep_results, oldest forgotten first (a dropped value warned about once, then
summarised), a collected one is released, a forgotten one raises OutcomeForgotten, and
memory stays flat.
"""

from __future__ import annotations

import gc
import logging
import tracemalloc

import pytest
from helpers import noop, ticker_sleep, value_after

import pyos
from pyos import NewTask, WaitTask


# -- 3. Outcomes nobody collects -----------------------------------------------------------
def test_uncollected_none_results_keep_memory_flat() -> None:
    """120k short handlers nobody waits for: at most keep_results outcomes kept (a None is
    kept too, so that a forgotten outcome is never passed off as None), few tasks, flat
    memory."""
    total, marks = 120_000, (12_000, 120_000)
    seen: dict[int, tuple[int, int, int]] = {}
    sched = pyos.Scheduler()

    def server():
        for i in range(1, total + 1):
            yield NewTask(noop())
            if i % 32 == 0:
                yield  # a real server would wait for its next client here
            if i in marks:
                gc.collect()
                seen[i] = (tracemalloc.get_traced_memory()[0], len(sched._outcomes),
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
    assert early_results == late_results == 10_000
    assert early_tasks < 1000 and late_tasks < 1000
    assert late - early < 1_000_000  # ~100k more tasks: proportional growth would be >10 MB


def test_keep_results_forgets_the_oldest_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """Beyond keep_results outcomes go oldest first: a WaitTask for one then raises
    OutcomeForgotten; a dropped value is warned about once, then summarised at close."""
    sched = pyos.Scheduler(keep_results=3)
    kept: list[object] = []
    values: list[object] = []

    def main():
        tids = []
        for value in (10, None, 20, 30, 40, 50):
            tids.append((yield NewTask(value_after(value))))
        for _ in range(3):
            yield
        kept.append(sorted(sched._outcomes._kept))
        for tid in tids:
            try:
                values.append((yield WaitTask(tid)))
            except pyos.OutcomeForgotten:
                values.append("forgotten")

    sched.new(main())
    with caplog.at_level(logging.WARNING, logger="pyos"):
        sched.mainloop()
    sched.close()
    assert kept == [[5, 6, 7]]  # tids 2..7
    assert values == ["forgotten"] * 3 + [30, 40, 50]
    assert len([r for r in caplog.records if "forgot" in r.getMessage()]) == 2


def test_collected_outcomes_are_not_reported_as_uncollected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A parent that waits for every value-returning child gets no 'forgot' warnings."""
    sched = pyos.Scheduler(keep_results=10)
    values: list[object] = []

    def parent():
        for i in range(30):
            tid = yield NewTask(value_after(i, 1 + i % 2))
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


def test_a_collected_outcome_is_released_and_then_forgotten() -> None:
    """Issue 9, faults 5 and 6: once a WaitTask has collected an outcome, the kernel no
    longer holds it (300 tasks returning 1 MB each must not hold 300 MB), and a later
    WaitTask for it raises OutcomeForgotten rather than returning None."""
    sched = pyos.Scheduler()
    seen: list[object] = []

    def big():
        yield
        return bytearray(1 << 20)

    def main():
        tids = []
        for _ in range(300):
            tids.append((yield NewTask(big())))
        for _ in range(3):
            yield
        for tid in tids:
            assert len((yield WaitTask(tid))) == 1 << 20
        seen.append(len(sched._outcomes))
        try:
            yield WaitTask(tids[0])
        except pyos.OutcomeForgotten as exc:
            seen.append(str(exc))

    gc.collect()
    tracemalloc.start()
    try:
        sched.new(main())
        sched.mainloop()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        sched.close()
    assert seen[0] == 0 and "no longer kept" in seen[1]
    assert held < 20 << 20


def test_a_forgotten_failure_is_not_passed_off_as_none() -> None:
    """Issue 9, fault 5: beyond keep_results, waiting for an old task that raised raises
    OutcomeForgotten; it never returns None."""
    def bad():
        yield
        raise ValueError("lost")

    def main():
        first = yield NewTask(bad())
        for _ in range(5):
            yield NewTask(value_after(1))
        for _ in range(3):
            yield
        try:
            return (yield WaitTask(first))
        except pyos.OutcomeForgotten:
            return "forgotten"

    assert pyos.run(main(), keep_results=3) == "forgotten"


def test_forgotten_outcomes_of_killed_tasks_are_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Killing thousands of tasks is not thousands of lost results: at most a summary."""
    def main():
        tids = []
        for _ in range(3000):
            tids.append((yield NewTask(ticker_sleep(3600))))
        for tid in tids:
            yield pyos.KillTask(tid)

    with caplog.at_level(logging.WARNING, logger="pyos"):
        pyos.run(main(), keep_results=100)
    assert not [r for r in caplog.records if "forgot" in r.getMessage()]


def test_forgotten_values_are_warned_about_once_then_summarised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many dropped values: one warning, then one summary when the scheduler closes."""
    def main():
        for _ in range(500):
            yield NewTask(value_after(42))
        yield

    with caplog.at_level(logging.WARNING, logger="pyos"):
        pyos.run(main(), keep_results=10)
    forgot = [r.getMessage() for r in caplog.records if "forgot" in r.getMessage()]
    assert len(forgot) == 2 and "490" in forgot[1], forgot


def test_run_s_own_target_is_not_a_forgotten_outcome(caplog: pytest.LogCaptureFixture) -> None:
    """run() returns its target's value itself: when the target ends before the tasks it
    started, their later exits do not push it out of the table with a 'forgot' warning."""
    def child():
        yield
        yield

    def main():
        for _ in range(20):
            yield NewTask(child())
        return "main's value"

    with caplog.at_level(logging.WARNING, logger="pyos"):
        assert pyos.run(main(), keep_results=3) == "main's value"
    assert not [r for r in caplog.records if "forgot" in r.getMessage()]
