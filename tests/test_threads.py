"""run_in_thread (pyos/threads.py), and the scheduler's part: max_threads and at_close.

Worker threads are real, so a test that needs fn to be busy blocks it on a
threading.Event that the test sets, never on a sleep; every wait is bounded.
"""

from __future__ import annotations

import pytest

import pyos


# -- The scheduler's part -----------------------------------------------------------------
def test_at_close_calls_run_latest_first_and_a_failing_one_stops_none(caplog) -> None:
    sched, calls = pyos.Scheduler(), []
    sched.at_close(lambda: calls.append("first"))
    sched.at_close(lambda: 1 / 0)
    sched.at_close(lambda: calls.append("last"))
    sched.close()
    sched.close()                      # a second close calls nothing again
    assert calls == ["last", "first"]
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("bad", [0, -3])
def test_max_threads_must_be_positive(bad: int) -> None:
    with pytest.raises(ValueError, match="max_threads"):
        pyos.Scheduler(max_threads=bad)
    sched = pyos.Scheduler(max_threads=2)
    sched.close()
    assert sched.max_threads == 2
