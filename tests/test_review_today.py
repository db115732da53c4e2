"""Regressions found reviewing 564aa31..05272c4: rounds in the run phase, CPU time sampled
by the tick.  Every loop is bounded; the one test that spends real time spends ~70 ms."""

from __future__ import annotations

import time

import pyos
from pyos import KillTask


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# -- CPU time for ps, sampled by the tick ----------------------------------------------
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
            spin(0.0007)
            yield ping.put(i)
            yield pong.get()
        yield ping.put(None)

    def light():
        while (yield ping.get()) is not None:
            spin(0.0004)
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


# -- Rounds: exactly what going round the main loop did ----------------------------------
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
