"""A tour of pyos's system calls, one small program per idea.  Run: make tour."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

import pyos
from pyos import GetTid, KillTask, NewTask, Sleep, WaitTask


def countdown(name: str, n: int) -> object:
    """A task: a generator that yields to give up the processor."""
    tid = yield GetTid()
    while n:
        print(f"  task {tid} ({name}): {n}")
        n -= 1
        yield                          # let the others run
    return f"{name} done"


def add(a: int, b: int) -> object:
    """A sub-coroutine: called with `yield add(...)`, its return value comes back."""
    yield Sleep(0.01)
    if b < 0:
        raise ValueError("only non-negative b, please")
    return a + b


async def fetch(n: int) -> int:
    """An async task: system calls are awaitable."""
    await Sleep(0.01 * n)
    return n * n


def forever() -> object:
    try:
        while True:
            yield Sleep(1)
    finally:
        print("  forever: unwound by KillTask, finally blocks run")


def main() -> object:
    print("1. Round-robin: two tasks take turns at every bare yield")
    a = yield NewTask(countdown("a", 3))
    b = yield NewTask(countdown("b", 3))
    print("   results:", (yield WaitTask(a)), "/", (yield WaitTask(b)))

    print("2. Sub-coroutines: values and exceptions flow as in ordinary calls")
    print("   add(2, 3) =", (yield add(2, 3)))
    try:
        yield add(1, -1)
    except ValueError as exc:
        print("   caught from add(1, -1):", exc)

    print("3. Async tasks: await system calls and other coroutines")
    tids = []
    for n in range(1, 4):
        tids.append((yield NewTask(fetch(n))))
    squares = []
    for tid in tids:
        squares.append((yield WaitTask(tid)))
    print("   squares:", squares)

    print("4. KillTask unwinds a task; its waiters hear about it")
    victim = yield NewTask(forever())
    yield Sleep(0.02)
    print("   killed:", (yield KillTask(victim)))
    try:
        yield WaitTask(victim)
    except pyos.TaskKilled as exc:
        print("   WaitTask raised:", exc)

    print("5. ps: what every task is doing")
    sleeper = yield NewTask(forever(), name="sleeper")
    yield Sleep(0)
    print(pyos.format_ps((yield pyos.Ps())))
    yield KillTask(sleeper)            # pyos.run() waits for every task: end this one
    return "tour over"


if __name__ == "__main__":
    print(pyos.run(main()))
