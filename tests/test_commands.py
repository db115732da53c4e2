"""run_process (pyos/commands.py): subprocess.run for tasks, and what ends it early.

Real children on both pollers, waited for both ways (the ``mode`` fixture, children.py).
Where the test must know the child, it finds its pid in ps ("waiting for process N").
The grace period is checked on the virtual clock, with a child that ignores SIGTERM.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest
from children import alive, mode, ps_pid, zombie  # noqa: F401 (mode: a fixture, used by name)
from helpers import run_watched, wait_for

import pyos
from pyos import CancelTask, KillTask, NewTask, Ps, WaitTask

PIPE = subprocess.PIPE
PY = sys.executable


# -- run_process ------------------------------------------------------------------------------
@pytest.mark.usefixtures("mode")
def test_run_process_feeds_and_collects_a_megabyte_each_way(sched) -> None:
    data = bytes(range(256)) * 4096
    result = []

    def main():
        result.append((yield pyos.run_process(["cat"], input=data, capture_output=True)))
        result.append((yield pyos.run_process(["true"])))

    run_watched(sched, main())
    big, true = result
    assert big.returncode == 0 and big.stdout == data and big.stderr == b""
    assert (true.args, true.returncode, true.stdout, true.stderr) == (["true"], 0, None, None)


def test_run_process_check_raises_called_process_error_with_the_output(sched) -> None:
    caught = []
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(5)"

    def main():
        try:
            yield pyos.run_process([PY, "-c", script], capture_output=True, check=True)
        except subprocess.CalledProcessError as exc:
            caught.append((exc.returncode, exc.stdout, exc.stderr))

    run_watched(sched, main())
    assert caught == [(5, b"out\n", b"err\n")]


@pytest.mark.usefixtures("mode")
@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancelling_run_process_terminates_and_reaps_the_child(sched, how) -> None:
    record, pids = [], []

    def runner():
        op = pyos.run_process(["sleep", "30"], capture_output=True)
        try:
            yield pyos.timeout_after(0.25, op) if how == "timeout" else op
        except (pyos.Cancelled, pyos.TaskTimeout) as exc:
            record.append((type(exc).__name__, alive(pids[0])))

    def main():
        tid = yield NewTask(runner())
        for _ in range(1000):            # until the child is up and waited for
            if (pid := ps_pid((yield Ps()))) is not None:
                break
            yield pyos.Sleep(0.001)
        pids.append(pid)
        if how == "cancel":
            yield CancelTask(tid)
        yield WaitTask(tid)
        record.append([t.name for t in (yield Ps()) if " of process " in t.name])  # helpers gone

    run_watched(sched, main())
    name = "Cancelled" if how == "cancel" else "TaskTimeout"
    assert record == [(name, False), []]


@pytest.mark.usefixtures("mode")
def test_killing_run_process_kills_the_child_at_once_and_close_reaps_it() -> None:
    pids = []

    def main():
        tid = yield NewTask(pyos.run_process(["sleep", "30"], stdout=PIPE))
        for _ in range(1000):
            if (pid := ps_pid((yield Ps()))) is not None:
                break
            yield pyos.Sleep(0.001)
        pids.append(pid)
        yield KillTask(tid)
        return [t.name for t in (yield Ps())]

    sched = pyos.Scheduler()
    sched.new(main())
    sched.mainloop()
    assert wait_for(lambda: zombie(pids[0]) or not alive(pids[0]))   # SIGKILLed at once
    sched.close()
    assert not alive(pids[0])


def test_the_grace_period_is_five_seconds_on_the_virtual_clock() -> None:
    """A child that ignores SIGTERM is killed 5 (virtual) seconds after its deadline."""
    clock, record = pyos.VirtualClock(), []
    r, w = os.pipe()
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"os.write({w}, b'r'); time.sleep(30)")

    def runner():
        try:
            yield pyos.timeout_after(60, pyos.run_process([PY, "-c", script], pass_fds=[w]))
        except pyos.TaskTimeout:
            record.append(clock.time())

    def ready():                         # busy until the child ignores SIGTERM: no jump yet
        for _ in range(10_000_000):
            if select.select([r], [], [], 0)[0]:
                return
            yield

    sched = pyos.Scheduler(clock=clock)
    try:
        sched.new(runner())
        sched.new(ready())
        sched.mainloop()
    finally:
        sched.close()
        os.close(r)
        os.close(w)
    assert record == [65.0]


@pytest.mark.usefixtures("mode")
def test_a_second_cancel_during_the_grace_period_kills_the_child_at_once() -> None:
    r, w = os.pipe()
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"os.write({w}, b'r'); time.sleep(30)")
    record, pids = [], []

    def runner():
        try:
            yield pyos.run_process([PY, "-c", script], pass_fds=[w], grace=30,
                                   capture_output=True)
        except pyos.Cancelled:
            record.append("cancelled")

    def main():
        tid = yield NewTask(runner())
        yield pyos.ReadWait(r)           # the child ignores SIGTERM now
        pids.append(ps_pid((yield Ps())))
        yield CancelTask(tid)            # terminate: ignored, so a 30 s grace begins
        for _ in range(3):
            yield
        yield CancelTask(tid)            # enough: the child is killed, the caller goes on
        yield WaitTask(tid)
        record.append([t.name for t in (yield Ps()) if " of process " in t.name])

    sched = pyos.Scheduler()
    try:
        sched.new(main())
        sched.mainloop()
        assert wait_for(lambda: zombie(pids[0]) or not alive(pids[0]))
    finally:
        sched.close()
        os.close(r)
        os.close(w)
    assert record == ["cancelled", []] and not alive(pids[0])
