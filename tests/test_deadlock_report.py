"""The Deadlock report: wait-for cycles, chains into them, and where each task waits."""

from __future__ import annotations

import os

import pytest
from helpers import line_of

from pyos import Deadlock, Ps, SystemCall, WaitTask

HERE = os.path.basename(__file__)


def wait_for(tid):
    yield WaitTask(tid)


async def await_for(tid):
    await WaitTask(tid)


class Park(SystemCall):
    """A user-defined call that hands the task to nobody: it never runs again."""

    def handle(self) -> None:
        pass


def parked():
    yield Park()


# -- Deadlock reports -------------------------------------------------------------------
def deadlock(sched, *tasks) -> list[str]:
    """Start (name, target) tasks, run until Deadlock, return the report's lines."""
    for name, target in tasks:
        sched.new(target, name=name)
    with pytest.raises(Deadlock) as info:
        sched.mainloop()
    assert sched.ps() == []                  # every task was unwound
    lines = str(info.value).splitlines()
    assert lines[0].startswith("no task can ever run again")
    return lines[1:]


WAIT_AT = f"at {HERE}:{line_of(wait_for, 'yield WaitTask')}:wait_for"


def test_deadlock_two_cycle(sched):
    """Two tasks waiting for each other: the cycle, then each task, where it waits."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {WAIT_AT}",
        f"  task 2 (b) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_three_cycle(sched):
    """A three-task cycle is named in full, starting from the lowest tid."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(3)), ("c", wait_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 3 (c) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {WAIT_AT}",
        f"  task 2 (b) waiting for task 3 {WAIT_AT}",
        f"  task 3 (c) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_chain_into_cycle(sched):
    """Tasks queued behind a cycle are listed, but the cycle names only its members."""
    assert deadlock(sched, ("d", wait_for(2)), ("a", wait_for(3)), ("b", wait_for(2)),
                    ("e", wait_for(1))) == [
        "wait-for cycle: task 2 (a) -> task 3 (b) -> task 2 (a)",
        f"  task 1 (d) waiting for task 2 {WAIT_AT}",
        f"  task 2 (a) waiting for task 3 {WAIT_AT}",
        f"  task 3 (b) waiting for task 2 {WAIT_AT}",
        f"  task 4 (e) waiting for task 1 {WAIT_AT}",
    ]


def test_deadlock_two_separate_cycles(sched):
    """Each independent cycle gets its own line."""
    assert deadlock(sched, ("a", wait_for(2)), ("b", wait_for(1)),
                    ("c", wait_for(4)), ("d", wait_for(3)))[:2] == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        "wait-for cycle: task 3 (c) -> task 4 (d) -> task 3 (c)",
    ]


def test_deadlock_without_cycle(sched):
    """A task waiting on a task that nothing will wake: no cycle line, both listed."""
    lines = deadlock(sched, ("a", wait_for(2)), ("b", parked()))
    assert not any("cycle" in line for line in lines)
    assert len(lines) == 2
    assert lines[0] == f"  task 1 (a) waiting for task 2 {WAIT_AT}"
    assert lines[1].startswith("  task 2 (b) ")
    assert lines[1].endswith(f" at {HERE}:{line_of(parked, 'yield Park()')}:parked")


def test_parked_task_is_not_called_ready(sched):
    """A task parked by a user-defined call is blocked, and ps and Deadlock say so."""
    seen = []

    def main():
        yield
        seen.extend((yield Ps()))

    sched.new(parked(), name="b")
    sched.new(main(), name="main")
    b_line, a_line = deadlock(sched, ("a", wait_for(1)))
    assert a_line == f"  task 3 (a) waiting for task 1 {WAIT_AT}"
    assert seen[0].state != "ready"
    assert "ready" not in b_line and "Park()" in b_line, b_line


def test_deadlock_in_async_tasks_names_user_code(sched):
    """For async tasks the report points at the task's own await."""
    at = f"at {HERE}:{line_of(await_for, 'await WaitTask')}:await_for"
    assert deadlock(sched, ("a", await_for(2)), ("b", await_for(1))) == [
        "wait-for cycle: task 1 (a) -> task 2 (b) -> task 1 (a)",
        f"  task 1 (a) waiting for task 2 {at}",
        f"  task 2 (b) waiting for task 1 {at}",
    ]
