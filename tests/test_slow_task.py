"""Slow-task warnings: a task that runs too long without yielding is reported once.

These tests sleep for real (a blocking time.sleep in the task), for tens of milliseconds.
"""

from __future__ import annotations

import logging
import re
import time

from helpers import line_of

import pyos
from pyos import Ps


# -- Slow-task warnings -----------------------------------------------------------------
def hog(seconds):
    time.sleep(seconds)
    yield                              # the hog stops here


def slow_records(caplog, **options) -> list[logging.LogRecord]:
    """Run a task that blocks for 40 ms under Scheduler(**options); its warnings."""
    sched = pyos.Scheduler(**options)
    try:
        sched.new(hog(0.04), name="hog")
        sched.mainloop()
    finally:
        sched.close()
    return [r for r in caplog.records if r.name == "pyos" and r.levelno >= logging.WARNING]


def test_slow_task_warns_with_name_and_where(caplog):
    """A task over 0.1 s is reported once at WARNING, with where it stopped; CPU counts it."""
    caplog.set_level(logging.WARNING, logger="pyos")
    infos = []

    def main():
        yield hog(0.15)
        infos.extend((yield Ps()))

    sched = pyos.Scheduler()
    try:
        sched.new(main(), name="slowpoke")
        sched.mainloop()
    finally:
        sched.close()
    [record] = [r for r in caplog.records if r.name == "pyos"]
    assert record.levelno == logging.WARNING
    match = re.fullmatch(r"<Task 1 'slowpoke'> ran (\d+) ms without yielding; "
                         r"it is now at (.+):(\d+) in hog", record.getMessage())
    assert match, record.getMessage()
    assert 150 <= int(match[1]) < 1000
    assert (match[2], int(match[3])) == (__file__, line_of(hog, "the hog stops here"))
    assert infos[0].runs == 1 and infos[0].cpu >= 0.15


def test_slow_task_threshold_is_configurable(caplog):
    """slow_task sets the threshold; None turns the warning off."""
    caplog.set_level(logging.WARNING, logger="pyos")
    assert len(slow_records(caplog, slow_task=0.02)) == 1
    caplog.clear()
    assert slow_records(caplog, slow_task=None) == []
    assert slow_records(caplog, slow_task=1.0) == []
    assert slow_records(caplog) == []            # the default is 0.1 s


def test_fast_tasks_are_not_reported(sched, caplog):
    """Thousands of quick runs never trigger the warning."""
    caplog.set_level(logging.DEBUG, logger="pyos")

    def quick():
        for _ in range(2000):
            yield

    sched.new(quick())
    sched.new(quick())
    sched.mainloop()
    assert caplog.records == []


def test_a_slow_batch_of_several_tasks_names_them(caplog):
    """CPU time is charged per batch: with several tasks in the slow one, the warning
    names them all (the hog is among them), and where the last one stands."""
    caplog.set_level(logging.WARNING, logger="pyos")

    def quick():
        yield

    sched = pyos.Scheduler()
    try:
        sched.new(quick(), name="quick")
        sched.new(hog(0.15), name="hog")
        sched.mainloop()
    finally:
        sched.close()
    [record] = [r for r in caplog.records if r.name == "pyos"]
    assert re.fullmatch(r"2 tasks ran (\d+) ms between two polls without yielding "
                        r"\(<Task 1 'quick'>, <Task 2 'hog'>\); the last, <Task 2 'hog'>, "
                        r"is now at .+:\d+ in hog", record.getMessage()), record.getMessage()


# -- CPU time, sampled in ticks ----------------------------------------------------------
def spend(seconds):
    """Busy for seconds of CPU, in the calling task's step."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def spinner(steps, seconds):
    """Busy for `seconds` of CPU at each of `steps` steps."""
    for _ in range(steps):
        spend(seconds)
        yield


def test_cpu_time_accrues_until_a_tick_and_the_total_is_kept():
    """Short batches are not charged one by one: their time adds up, and the batch that
    takes it past ``cpu_tick`` is charged all of it.  Nothing is lost: charged plus not
    yet charged is at least the time the task spun."""
    sched = pyos.Scheduler()
    sched.cpu_tick = 0.005
    try:
        tid = sched.new(spinner(100, 0.0002))      # 100 steps of 0.2 ms: 20 ms in all
        task = sched._tasks[tid]
        sched.mainloop()
    finally:
        sched.close()
    assert 0 < sched._unbilled < 0.005             # what the last tick has not charged
    assert task.cpu >= 0.015                       # at least three ticks were charged
    assert task.cpu + sched._unbilled >= 0.02      # and the sum is all of it


def test_a_batch_longer_than_a_tick_is_charged_at_once_and_shared():
    """Two tasks in one batch of 10 ms share its charge equally; with a tick no batch
    reaches, nothing is charged, which shows the time is sampled, not read per batch."""
    for tick, charged in ((0.001, True), (3600.0, False)):
        sched = pyos.Scheduler()
        sched.cpu_tick = tick
        try:
            tasks = [sched._tasks[sched.new(spinner(1, 0.005))] for _ in range(2)]
            sched.mainloop()
        finally:
            sched.close()
        first, second = (task.cpu for task in tasks)
        assert first == second
        assert (first >= 0.005) is charged, (tick, first)


def test_cpu_time_of_a_ping_pong_pair_goes_to_the_task_that_spent_it():
    """Two tasks handing a number back and forth (what rounds are for): one spends 0.7 ms
    a step, the other 0.4 ms, so a period is 1.1 ms, over one tick.  Sampling must charge
    each task its share on average; restarting the count from zero at every tick made the
    phase lock onto the same step every time, so that the light task was charged all of
    the pair's time and the heavy one nothing: ps named the wrong hog."""
    ping, pong = pyos.Queue(), pyos.Queue()
    exchanges = 60

    def heavy():
        for i in range(exchanges):
            spend(0.0007)
            yield ping.put(i)
            yield pong.get()
        yield ping.put(None)

    def light():
        while (yield ping.get()) is not None:
            spend(0.0004)
            yield pong.put(0)

    sched = pyos.Scheduler()
    try:
        a = sched._tasks[sched.new(heavy())]
        b = sched._tasks[sched.new(light())]
        sched.mainloop()
    finally:
        sched.close()
    spent = exchanges * 0.0011
    assert a.cpu + b.cpu + sched._unbilled >= spent          # nothing lost
    assert a.cpu > b.cpu, (a.cpu, b.cpu)                     # the hog is the hog
    assert b.cpu < 0.55 * (a.cpu + b.cpu), (a.cpu, b.cpu)    # its share is ~36%, not 100%
