"""Kernel hooks that library code uses: at_exit() hooks, and who runs while a task unwinds.

A lock must learn that its owner ended holding it, and a task group that its owner ended
without joining it; both rely on ``Kernel.at_exit``.  A killed task's finally blocks may
release a lock, which checks ``current_tid()``: it must name the task being unwound.
"""

from __future__ import annotations

import logging

import pyos
from pyos import CancelTask, KillTask, NewTask, Sleep, WaitTask, current_tid
from pyos.runtime import current_kernel


def sleeper(seconds=1.0):
    yield Sleep(seconds)
    return "slept"


def failing():
    yield Sleep(0.5)
    raise ValueError("boom")


def test_hook_sees_each_way_a_task_ends():
    """Return, failure, cancel and kill each reach the hook, as the exception that ended it."""
    seen = []

    def main():
        kernel = current_kernel()
        tids = []
        for target in (sleeper(), failing(), sleeper(), sleeper()):
            tids.append((yield NewTask(target)))
        for tid in tids:
            assert kernel.at_exit(tid, lambda exc, tid=tid: seen.append((tid, type(exc))))
        yield CancelTask(tids[2])
        yield KillTask(tids[3])
        for tid in tids:
            try:
                yield WaitTask(tid)
            except pyos.TaskError:
                pass
        return tids

    tids = pyos.run(main(), clock=pyos.VirtualClock())
    assert seen == [(tids[3], pyos.TaskKilled), (tids[2], pyos.Cancelled),
                    (tids[1], ValueError), (tids[0], StopIteration)]


def test_discarded_hook_is_not_called_and_ended_task_refuses():
    seen = []

    def main():
        kernel = current_kernel()
        tid = yield NewTask(sleeper())
        hook = seen.append
        assert kernel.at_exit(tid, hook)
        kernel.discard_at_exit(tid, hook)
        kernel.discard_at_exit(tid, hook)          # twice: harmless
        assert (yield WaitTask(tid)) == "slept"
        assert not kernel.at_exit(tid, hook)       # it has ended: no hook, and it says so
        assert kernel._exit_hooks == {}            # nothing left behind

    pyos.run(main(), clock=pyos.VirtualClock())
    assert seen == []


def test_moved_hook_follows_the_new_task_and_leaves_the_old_ones_others():
    """move_at_exit(hook, old, new): hook runs when new ends, not when old does; old's
    other hooks stay; a new task that has ended refuses it, and it is gone from old."""
    seen = []

    def main():
        kernel = current_kernel()
        a = yield NewTask(sleeper(1.0))
        b = yield NewTask(sleeper(2.0))
        c = yield NewTask(sleeper(0.5))
        hook = seen.append

        def other(exc):
            seen.append(("a's other", type(exc)))

        assert kernel.at_exit(a, hook) and kernel.at_exit(a, other)
        assert kernel.move_at_exit(hook, a, b)
        assert kernel.at_exit(c, hook)
        assert kernel.move_at_exit(hook, c, b)       # b has it already: still once
        assert kernel._exit_hooks == {a: {other: None}, b: {hook: None}}
        yield WaitTask(c)
        yield WaitTask(a)
        assert not kernel.move_at_exit(hook, b, a)   # a has ended: refused...
        assert kernel._exit_hooks == {}              # ...and taken off b all the same
        assert kernel.at_exit(b, hook)
        yield WaitTask(b)
        assert kernel._exit_hooks == {}

    pyos.run(main(), clock=pyos.VirtualClock())
    assert [x if isinstance(x, tuple) else type(x) for x in seen] == [
        ("a's other", StopIteration), StopIteration]


def test_failing_hook_is_logged_and_others_still_run(caplog):
    seen = []

    def bad(exc):
        raise RuntimeError("hook bug")

    def main():
        kernel = current_kernel()
        tid = yield NewTask(sleeper())
        kernel.at_exit(tid, bad)
        kernel.at_exit(tid, seen.append)
        yield WaitTask(tid)

    with caplog.at_level(logging.ERROR, logger="pyos"):
        pyos.run(main(), clock=pyos.VirtualClock())
    assert [type(e) for e in seen] == [StopIteration]
    assert "an exit hook of <Task 2 'sleeper'> failed" in caplog.text


def test_killed_task_unwinds_as_itself():
    """current_tid() in a killed task's finally block names that task, not its killer
    (a lock released there checks who releases it); the killer's id is back afterwards."""
    seen = []

    def victim():
        try:
            yield Sleep(10)
        finally:
            seen.append(("finally", current_tid()))

    def main():
        tid = yield NewTask(victim())
        yield Sleep(1)
        yield KillTask(tid)
        seen.append(("killer", current_tid()))
        return tid

    tid = pyos.run(main(), clock=pyos.VirtualClock())
    assert seen == [("finally", tid), ("killer", 1)]
