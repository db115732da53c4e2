"""gather and first: task groups (groups.py) with other policies, started all at once.

gather() waits for every target and returns their values in order; first() returns the
first to return and cancels the rest.  Both start every target in one system call
(``TaskGroup._spawn_all``, which spawn() uses for one): so gathering a thousand tasks
costs a thousand task creations and little else, and no child can run, fail and close
the group before all of them are counted.
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import Any

from .groups import TaskGroup
from .task import check_target

__all__ = ["first", "gather"]


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
    yield from group._spawn_all(targets)
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
    yield from group._spawn_all(targets)
    return (yield from group.join())  # type: ignore[no-any-return]
