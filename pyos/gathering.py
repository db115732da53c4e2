"""gather and first: task groups (groups.py) with other policies, started all at once.

gather() waits for every target and returns their values in order; first() returns the
first to return and cancels the rest.  Both start every target in one system call
(``_SpawnAll``): one call rather than one per child, so that gathering a thousand tasks
costs a thousand task creations and little else, and no child can run, fail and close
the group before all of them are counted.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from .groups import TaskGroup
from .syscalls import SystemCall
from .task import check_target

__all__ = ["first", "gather"]


@types.coroutine
def _spawn_all(group: TaskGroup, targets: tuple[Any, ...]) -> Generator[Any, Any, None]:
    """Start every target (checked already) as a child of group, in one system call."""
    if group._owner is None:
        group._adopt()
    start = len(group._slots)
    group._slots += [None] * len(targets)
    yield _SpawnAll(group, [(slot, group._child(slot, target),
                             getattr(target, "__qualname__", None))
                            for slot, target in enumerate(targets, start)])


class _SpawnAll(SystemCall):
    """Many of groups.py's _Spawn in one: each child is counted as soon as it is made."""

    def __init__(self, group: TaskGroup, children: list[tuple[int, Any, str | None]]) -> None:
        self.group, self.children = group, children

    def handle(self) -> None:
        new, started = self.sched.new, self.group._started
        for slot, target, name in self.children:
            started(new(target, name), slot)
        self.sched.schedule(self.task)

    def __repr__(self) -> str:
        return f"spawn {len(self.children)} into {self.group!r}"


def _group(targets: tuple[Any, ...], name: str) -> TaskGroup:
    for target in targets:
        check_target(target)   # every target is checked before any of them starts
    return TaskGroup(name)


@types.coroutine
def gather(*targets: Any, return_exceptions: bool = False) -> Generator[Any, Any, list[Any]]:
    """Run each target as a task of a group; return their values in argument order.

    The first failure cancels the rest and an ExceptionGroup is raised once all have
    ended; with return_exceptions=True nothing is cancelled and exceptions fill their slots.
    """
    group = _group(targets, "gather")
    group._fail_fast, group._in_slots = not return_exceptions, return_exceptions
    yield from _spawn_all(group, targets)
    return (yield from group.join())  # type: ignore[no-any-return]


@types.coroutine
def first(*targets: Any) -> Generator[Any, Any, tuple[int, Any]]:
    """Run each target as a task; the first to return wins: return (its index, its value).

    The others are cancelled and waited for first.  If every target fails, an
    ExceptionGroup of their exceptions is raised.
    """
    if not targets:
        raise ValueError("first() needs at least one target")
    group = _group(targets, "first")
    group._fail_fast, group._first = False, True
    yield from _spawn_all(group, targets)
    return (yield from group.join())  # type: ignore[no-any-return]
