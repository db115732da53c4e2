"""TaskGroup, gather and first (pyos/groups.py), on the virtual clock.

The semantics of issue 11, point 3, each with a test: ExceptionGroups of the children's
own exceptions, never logged once delivered; the first failure cancels the rest and the
async-with body; an owner that ends without joining, is cancelled, times out or is
killed; spawn after a failure or a join; gather and first.
"""

from __future__ import annotations

import logging

import pytest

import pyos
from pyos import (
    CancelTask,
    Deadlock,
    KillTask,
    Lock,
    NewTask,
    Ps,
    Sleep,
    TaskGroup,
    TaskTimeout,
    WaitTask,
    first,
    gather,
    timeout_after,
)


def run(main):
    return pyos.run(main, clock=pyos.VirtualClock())


def child(record, name, seconds, fail=None):
    """Sleep, then return name (or raise fail); record a cancel or kill on the way out."""
    try:
        yield Sleep(seconds)
    except pyos.Cancelled:
        record.append((name, "cancelled"))
        raise
    except GeneratorExit:
        record.append((name, "killed"))
        raise
    if fail is not None:
        record.append((name, "fails"))
        raise fail
    record.append((name, "returns"))
    return name


async def async_child(record, name, seconds, fail=None):
    """child(), as an async task."""
    try:
        await Sleep(seconds)
    except pyos.Cancelled:
        record.append((name, "cancelled"))
        raise
    except GeneratorExit:
        record.append((name, "killed"))
        raise
    if fail is not None:
        record.append((name, "fails"))
        raise fail
    record.append((name, "returns"))
    return name


def only(group_error):
    return [(type(e).__name__, str(e)) for e in group_error.exceptions]


# -- Joining -------------------------------------------------------------------------------
def test_join_returns_values_in_spawn_order_generator_and_async():
    record = []

    def gen_owner():
        g = TaskGroup("g")
        yield g.spawn(child(record, "slow", 3))
        yield g.spawn(async_child(record, "fast", 1))
        return (yield g.join())

    async def async_owner():
        async with TaskGroup("a") as g:
            await g.spawn(async_child(record, "x", 2))
            await g.spawn(child(record, "y", 1))
        return g.results

    assert run(gen_owner()) == ["slow", "fast"]
    assert run(async_owner()) == ["x", "y"]
    assert record == [("fast", "returns"), ("slow", "returns"), ("y", "returns"),
                      ("x", "returns")]


def test_first_failure_cancels_the_rest_and_join_raises_their_own_exceptions(caplog):
    record = []

    def owner():
        g = TaskGroup("g")
        yield g.spawn(child(record, "a", 5))
        yield g.spawn(child(record, "b", 1, ValueError("b broke")))
        yield g.spawn(async_child(record, "c", 5))
        try:
            yield g.join()
        except ExceptionGroup as eg:
            record.append(only(eg))
        with pytest.raises(RuntimeError, match="cannot spawn"):
            yield g.spawn(child(record, "late", 1))

    run(owner())
    assert record == [("b", "fails"), ("a", "cancelled"), ("c", "cancelled"),
                      [("ValueError", "b broke")]]
    assert caplog.text == ""                     # delivered: not logged as unhandled


def test_failure_before_join_is_delivered_by_the_later_join_and_not_logged(caplog):
    record = []

    def owner():
        g = TaskGroup()
        yield g.spawn(child(record, "a", 1, KeyError("k")))
        yield g.spawn(child(record, "b", 1, OSError("o")))
        yield Sleep(5)                            # both fail while nobody joins
        with pytest.raises(RuntimeError):
            yield g.spawn(child(record, "late", 1))
        try:
            yield g.join()
        except ExceptionGroup as eg:
            record.append(only(eg))

    run(owner())
    assert record == [("a", "fails"), ("b", "fails"), [("KeyError", "'k'"), ("OSError", "o")]]
    assert caplog.text == ""


def test_spawn_after_join_and_join_twice_raise():
    def owner():
        g = TaskGroup()
        yield g.spawn(child([], "a", 1))
        assert (yield g.join()) == ["a"]
        with pytest.raises(RuntimeError):
            yield g.spawn(child([], "b", 1))
        with pytest.raises(RuntimeError):
            yield g.join()
        return (yield TaskGroup().join())

    assert run(owner()) == []


def test_cancel_leaves_none_in_cancelled_slots():
    record = []

    def owner():
        g = TaskGroup()
        yield g.spawn(child(record, "a", 1))
        yield g.spawn(child(record, "b", 5))
        yield Sleep(2)
        g.cancel()
        return (yield g.join())

    assert run(owner()) == ["a", None]
    assert record == [("a", "returns"), ("b", "cancelled")]


def test_a_child_killed_before_it_ever_ran_is_counted_as_ended():
    def owner():
        g = TaskGroup()
        tid = yield g.spawn(child([], "a", 1))
        yield KillTask(tid)
        return (yield g.join())

    assert run(owner()) == [None]


# -- async with ----------------------------------------------------------------------------
def test_child_failure_cancels_the_async_with_body():
    record = []

    async def owner():
        try:
            async with TaskGroup("g") as g:
                await g.spawn(child(record, "a", 1, ValueError("a")))
                await g.spawn(child(record, "b", 5))
                try:
                    await Sleep(10)
                except pyos.Cancelled:
                    record.append("body cancelled")
                    raise
        except* ValueError as eg:
            record.append(only(eg))
        await Sleep(1)                            # no stray cancel is left behind
        record.append("after")

    run(owner())
    assert record == [("a", "fails"), ("b", "cancelled"), "body cancelled",
                      [("ValueError", "a")], "after"]


def test_child_failure_while_the_body_runs_on_leaves_no_stray_cancel():
    """The body never blocks after the failure: the group's cancel must not hit later."""
    record = []

    async def owner():
        with pytest.raises(ExceptionGroup):
            async with TaskGroup() as g:
                await g.spawn(child(record, "a", 0, ValueError("a")))
                for _ in range(3):
                    await _Yield()
        await Sleep(1)
        record.append("after")

    run(owner())
    assert record == [("a", "fails"), "after"]


class _Yield(pyos.SystemCall):
    """Give up the processor without blocking (a bare yield, for async tasks)."""

    def handle(self) -> None:
        self.sched._ready.append(self.task)


def test_body_exception_cancels_children_and_comes_first_in_the_group_error():
    record = []

    async def fails_when_cancelled():
        try:
            await Sleep(5)
        except pyos.Cancelled:
            record.append("child cancelled")
            raise KeyError("child") from None

    async def owner():
        try:
            async with TaskGroup() as g:
                await g.spawn(fails_when_cancelled())
                await Sleep(1)
                raise ValueError("body")
        except ExceptionGroup as eg:
            record.append(only(eg))

    run(owner())
    assert record == ["child cancelled", [("ValueError", "body"), ("KeyError", "'child'")]]


def test_body_exception_is_first_in_the_group_error():
    record = []

    async def owner():
        try:
            async with TaskGroup() as g:
                await g.spawn(child(record, "a", 5))
                raise ValueError("body")
        except ExceptionGroup as eg:
            record.append(only(eg))

    run(owner())
    assert record == [("a", "cancelled"), [("ValueError", "body")]]


# -- The owner cancelled, timed out, killed, or gone ---------------------------------------
def test_owner_cancelled_while_joining_cancels_and_waits_for_children():
    record = []

    def owner():
        g = TaskGroup()
        yield g.spawn(child(record, "a", 5))
        yield g.spawn(async_child(record, "b", 5))
        try:
            yield g.join()
        except pyos.Cancelled:
            record.append(("owner cancelled", len(g._running)))
            raise

    def main():
        tid = yield NewTask(owner())
        yield Sleep(1)
        yield CancelTask(tid)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)

    run(main())
    assert record == [("a", "cancelled"), ("b", "cancelled"), ("owner cancelled", 0)]


def test_owner_timing_out_gets_task_timeout_after_its_children_ended():
    record = []

    async def async_owner():
        try:
            async with timeout_after(1):
                async with TaskGroup() as g:
                    await g.spawn(child(record, "a", 5))
                    await Sleep(3)
        except TaskTimeout:
            record.append(("TaskTimeout", len(g._running)))

    def gen_owner():
        g = TaskGroup()
        yield g.spawn(async_child(record, "b", 5))
        try:
            yield timeout_after(1, g.join())
        except TaskTimeout:
            record.append(("TaskTimeout", len(g._running)))

    run(async_owner())
    run(gen_owner())
    assert record == [("a", "cancelled"), ("TaskTimeout", 0), ("b", "cancelled"),
                      ("TaskTimeout", 0)]


def test_owner_cancelled_in_the_body_waits_for_children_and_logs_their_failures(caplog):
    record = []

    async def dying_child():
        try:
            await Sleep(5)
        except pyos.Cancelled:
            record.append("child cancelled")
            raise ValueError("failed while being cancelled") from None

    async def owner():
        try:
            async with TaskGroup("g") as g:
                await g.spawn(dying_child())
                await Sleep(10)
        except pyos.Cancelled:
            record.append("owner: Cancelled, as itself")
            raise

    def main():
        tid = yield NewTask(owner())
        yield Sleep(1)
        yield CancelTask(tid)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(tid)

    with caplog.at_level(logging.ERROR, logger="pyos"):
        run(main())
    assert record == ["child cancelled", "owner: Cancelled, as itself"]
    assert "task 3 of TaskGroup 'g' failed, and the group was not joined" in caplog.text
    assert "failed while being cancelled" in caplog.text


def test_owner_killed_kills_its_children():
    record = []

    def owner():
        g = TaskGroup()
        yield g.spawn(child(record, "a", 5))
        yield g.spawn(child(record, "b", 5))
        yield g.join()

    async def async_owner():
        async with TaskGroup() as g:
            await g.spawn(child(record, "c", 5))
            await Sleep(10)

    def main():
        for target in (owner(), async_owner()):
            tid = yield NewTask(target)
            yield Sleep(1)
            yield KillTask(tid)
        record.append([i.tid for i in (yield Ps())])

    run(main())
    assert record == [("a", "killed"), ("b", "killed"), ("c", "killed"), [1]]


def test_owner_ending_without_join_cancels_children_and_logs_failures(caplog):
    record = []

    def owner():
        g = TaskGroup("left")
        yield g.spawn(child(record, "a", 1, ValueError("nobody heard")))
        yield g.spawn(child(record, "b", 5))
        yield Sleep(2)
        return "owner done"

    with caplog.at_level(logging.ERROR, logger="pyos"):
        assert run(owner()) == "owner done"
    assert record == [("a", "fails"), ("b", "cancelled")]
    assert "task 2 of TaskGroup 'left' failed, and the group was not joined" in caplog.text
    assert "nobody heard" in caplog.text


def test_second_cancel_while_waiting_for_cancelled_children_is_kept_for_later():
    record = []

    def slow_to_cancel():
        try:
            yield Sleep(10)
        except pyos.Cancelled:
            yield Sleep(2)                  # clean-up that blocks
            record.append("child cleaned up")
            raise

    def owner():
        g = TaskGroup()
        yield g.spawn(slow_to_cancel())
        try:
            yield g.join()
        except pyos.Cancelled:
            record.append("owner: first cancel")
        try:
            yield Sleep(1)
        except pyos.Cancelled:
            record.append("owner: second cancel, at its next blocking point")

    def main():
        tid = yield NewTask(owner())
        yield Sleep(1)
        yield CancelTask(tid)
        yield Sleep(1)
        yield CancelTask(tid)               # while the owner waits for the child, shielded
        yield WaitTask(tid)

    run(main())
    assert record == ["child cleaned up", "owner: first cancel",
                      "owner: second cancel, at its next blocking point"]


# -- gather and first ----------------------------------------------------------------------
def test_gather_values_failures_and_return_exceptions():
    record = []

    def main():
        got = yield gather(child(record, "a", 2), async_child(record, "b", 1))
        try:
            yield gather(child(record, "c", 5), child(record, "d", 1, ValueError("d")))
        except ExceptionGroup as eg:
            got += only(eg)
        mixed = yield gather(child(record, "e", 2, KeyError("e")), child(record, "f", 3),
                             return_exceptions=True)
        return got, [type(x).__name__ if isinstance(x, Exception) else x for x in mixed]

    async def amain():
        return await gather()

    assert run(main()) == (["a", "b", ("ValueError", "d")], ["KeyError", "f"])
    assert record == [("b", "returns"), ("a", "returns"), ("d", "fails"), ("c", "cancelled"),
                      ("e", "fails"), ("f", "returns")]
    assert run(amain()) == []


def test_gather_starts_every_target_before_any_runs_even_past_a_turn():
    """More targets than calls_per_turn, the first failing at once: gather still raises
    that failure (every child was counted before any ran), and the rest are cancelled."""
    ran = []

    def failing():
        ran.append("fails")
        raise ValueError("at once")
        yield

    def sleeper(n):
        ran.append(n)
        yield Sleep(10)

    def main():
        targets = [failing()] + [sleeper(n) for n in range(200)]
        try:
            yield gather(*targets)
        except ExceptionGroup as eg:
            return only(eg)

    assert run(main()) == [("ValueError", "at once")]
    assert ran == ["fails", *range(200)]


def test_gather_checks_every_target_before_starting_any():
    started = []

    def main():
        with pytest.raises(TypeError):
            yield gather(child(started, "a", 1), child)
        yield Sleep(2)

    run(main())
    assert started == []


def test_first_returns_the_winner_after_the_others_ended():
    record = []

    def main():
        got = yield first(child(record, "slow", 5), child(record, "bad", 0.5, ValueError()),
                          async_child(record, "fast", 1))
        record.append(got)
        try:
            yield first(child(record, "x", 1, KeyError("x")), child(record, "y", 2, OSError()))
        except ExceptionGroup as eg:
            record.append([type(e).__name__ for e in eg.exceptions])

    run(main())
    assert record == [("bad", "fails"), ("fast", "returns"), ("slow", "cancelled"),
                      (2, "fast"), ("x", "fails"), ("y", "fails"), ["KeyError", "OSError"]]
    with pytest.raises(ValueError):
        run(first())


# -- ps and the deadlock report ------------------------------------------------------------
def test_ps_and_a_deadlock_through_a_group():
    lock = Lock("L")

    def wants_lock():
        yield lock.acquire()

    def owner():
        yield lock.acquire()
        g = TaskGroup("workers")
        yield g.spawn(wants_lock(), name="worker")
        yield g.join()

    def peek():
        yield Sleep(1)
        return {i.name: i.state for i in (yield Ps())}

    sched = pyos.Scheduler(clock=pyos.VirtualClock())
    sched.new(owner(), name="owner")
    tid = sched.new(peek())
    with pytest.raises(Deadlock) as info:
        sched.mainloop()
    sched.close()
    report = str(info.value)
    assert "wait-for cycle: task 1 (owner) -> task 3 (worker) -> task 1 (owner)" in report
    assert "task 1 (owner) waiting for TaskGroup 'workers' (1 running)" in report
    assert tid == 2


# -- Children that end before spawn returns -------------------------------------------------
def at_once(value, fail=None):
    """A child that ends in its first run, without ever blocking."""
    if fail is not None:
        raise fail
    return value
    yield  # (a generator)


def test_children_that_end_before_their_spawn_returns_are_still_joined():
    # A run of spawns exhausts the owner's turn (calls_per_turn): a child then runs, and
    # ends, before the spawn that started it has returned to the owner.
    n = 3 * pyos.Scheduler.calls_per_turn

    def spawner(spawn_via_yield):
        g = TaskGroup()
        for i in range(n):
            if spawn_via_yield:
                yield g.spawn(at_once(i))
            else:
                yield from g.spawn(at_once(i))
        return (yield g.join())

    assert run(spawner(True)) == list(range(n))
    assert run(spawner(False)) == list(range(n))


def test_a_child_failing_before_its_spawn_returns_fails_the_group(caplog):
    n = 3 * pyos.Scheduler.calls_per_turn

    def owner():
        g = TaskGroup()
        for i in range(n):
            yield from g.spawn(at_once(i, ValueError(i) if i == n - 1 else None))
        try:
            yield g.join()
        except ExceptionGroup as eg:
            return only(eg)

    assert run(owner()) == [("ValueError", str(n - 1))]
    assert caplog.text == ""
