"""The timeline's file: written when the scheduler closes, named by the argument or by
PYOS_TIMELINE, never made when off, and never in the way of the program's own outcome.
"""

from __future__ import annotations

import logging
import os

import pytest
from helpers import load_trace, trace_slices

import pyos
from pyos import NewTask, Sleep


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's PYOS_TIMELINE, if any, must not leak into these tests."""
    monkeypatch.delenv("PYOS_TIMELINE", raising=False)


def test_written_when_the_scheduler_closes_and_at_the_end_of_run(tmp_path):
    first, second = tmp_path / "sched.json", tmp_path / "run.json"
    seen = []

    def main():
        yield
        seen.append(second.exists())

    sched = pyos.Scheduler(timeline=first)
    sched.new(main())
    sched.mainloop()
    assert not first.exists()        # mainloop() may run again: only close() writes
    sched.close()
    assert trace_slices(load_trace(first), "run", tid=1)
    pyos.run(main(), timeline=second)
    assert seen == [False, False] and trace_slices(load_trace(second), "run", tid=1)


def test_a_snapshot_mid_run_shows_waits_still_open(tmp_path):
    path = tmp_path / "now.json"

    def main():
        yield NewTask(sleeper(), name="sleeper")
        yield
        sched.timeline.write(path)

    def sleeper():
        yield Sleep(1)

    sched = pyos.Scheduler(timeline=tmp_path / "end.json", clock=pyos.VirtualClock())
    sched.new(main())
    sched.mainloop()
    sched.close()
    [wait] = trace_slices(load_trace(path), "wait", tid=2)
    assert wait["name"] == "sleeping for 1.000s more"
    assert wait["args"] == {"woken_by": "nothing yet: still waiting"}
    [then] = trace_slices(load_trace(tmp_path / "end.json"), "wait", tid=2)
    assert then["args"] == {"woken_by": "timer"}


def test_pyos_timeline_in_the_environment_turns_it_on(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    monkeypatch.setenv("PYOS_TIMELINE", str(path))

    def main():
        yield

    pyos.run(main())
    assert [e["tid"] for e in trace_slices(load_trace(path), "run")] == [1, 1]


@pytest.mark.parametrize("env", [None, ""])
def test_off_there_is_no_recorder_and_the_plain_loop_runs(monkeypatch, env):
    if env is not None:
        monkeypatch.setenv("PYOS_TIMELINE", env)
    sched = pyos.Scheduler()
    try:
        assert sched.timeline is None
        assert not {"_run_ready", "_poll_io", "_expire_timers", "_exit"} & set(vars(sched))
    finally:
        sched.close()


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_the_ring_must_hold_something(tmp_path, bad):
    with pytest.raises(ValueError, match="timeline_events"):
        pyos.Scheduler(timeline=tmp_path / "run.json", timeline_events=bad)


def test_an_unwritable_timeline_is_logged_and_the_result_still_returned(tmp_path, caplog):
    def main():
        yield
        return "done"

    path = tmp_path / "no such dir" / "run.json"
    with caplog.at_level(logging.ERROR, logger="pyos"):
        assert pyos.run(main(), timeline=path) == "done"
    assert [r.getMessage() for r in caplog.records] == [
        f"could not write the timeline to {path}: "
        f"[Errno 2] No such file or directory: '{path}.{os.getpid()}.partial'"]


def test_a_failed_write_leaves_no_partial_file_behind(tmp_path, caplog):
    """The file is written beside its path and renamed; when the rename fails, it goes."""
    def main():
        yield

    (tmp_path / "taken").mkdir()
    with caplog.at_level(logging.ERROR, logger="pyos"):
        pyos.run(main(), timeline=tmp_path / "taken")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"could not write the timeline to {tmp_path / 'taken'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
