"""Spawn cost and memory per task: N tasks, all blocked at once, in a fresh process.

    python benchmarks/memory.py KIND --tasks 100000

Why blocked tasks: a server with many idle connections is mostly tasks that wait, so the
resident memory of a waiting task is what limits how many clients fit.  Every task body
is the same shape: count itself as started, then block.

* pyos-wait: generator tasks doing ``yield WaitTask(tid)`` on one sleeping task.
  The closest equivalent of asyncio-future, and the pair the target compares.
* asyncio-future: coroutines doing ``await fut`` on one shared Future (which is exactly
  what awaiting another task does).
* pyos-sleep / asyncio-sleep: ``Sleep(3600)`` against ``asyncio.sleep(3600)``: a timer each.
* curio-event / trio-event: ``await event.wait()`` on one Event.

Memory is the peak RSS (VmHWM from /proc/self/status) once all N are blocked, minus the
RSS just before the first spawn (interpreter, imports, scheduler: the baseline).  Spawn
cost is the wall time from the first spawn until every task has run to its block.
Prints one JSON object and leaves with os._exit (tearing down N tasks is not measured).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pyos from the checkout
from common import proc_status_kb

STARTED = 0  # tasks that have run up to their block


def report(kind: str, n: int, base_kb: int, t0: float) -> None:
    """All n tasks are blocked: print the measurements and leave at once."""
    elapsed = time.perf_counter() - t0
    peak_kb = proc_status_kb("VmHWM")
    rss_kb = proc_status_kb("VmRSS")
    print(json.dumps({
        "kind": kind, "tasks": n, "started": STARTED, "baseline_kb": base_kb,
        "peak_kb": peak_kb, "bytes_per_task": (peak_kb - base_kb) * 1024 / n,
        "rss_bytes_per_task": (rss_kb - base_kb) * 1024 / n,
        "spawn_us": elapsed / n * 1e6,
    }), flush=True)
    os._exit(0)


def baseline() -> tuple[int, float]:
    gc.collect()
    return proc_status_kb("VmRSS"), time.perf_counter()


def pyos_kind(kind: str, n: int) -> None:
    """pyos-wait or pyos-sleep: generator tasks, spawned with Scheduler.new()."""
    import pyos
    from pyos import Sleep, WaitTask

    def blocker() -> Iterator[Any]:
        yield Sleep(3600)

    def waiter(tid: int) -> Iterator[Any]:
        global STARTED
        STARTED += 1
        yield WaitTask(tid)

    def sleeper(seconds: float) -> Iterator[Any]:
        global STARTED
        STARTED += 1
        yield Sleep(seconds)

    def probe(base_kb: int, t0: float) -> Iterator[Any]:
        while STARTED < n:
            yield
        report(kind, n, base_kb, t0)

    sched = pyos.Scheduler()
    tid = sched.new(blocker())
    base_kb, t0 = baseline()
    if kind == "pyos-wait":
        for _ in range(n):
            sched.new(waiter(tid))
    else:
        for _ in range(n):
            sched.new(sleeper(3600))
    sched.new(probe(base_kb, t0))
    sched.mainloop()


def asyncio_kind(kind: str, n: int) -> None:
    """asyncio-future or asyncio-sleep: coroutines spawned with create_task()."""
    import asyncio

    async def waiter(fut: asyncio.Future[None]) -> None:
        global STARTED
        STARTED += 1
        await fut

    async def sleeper(seconds: float) -> None:
        global STARTED
        STARTED += 1
        await asyncio.sleep(seconds)

    async def main() -> None:
        fut = asyncio.get_running_loop().create_future()
        base_kb, t0 = baseline()
        if kind == "asyncio-future":
            for _ in range(n):
                asyncio.create_task(waiter(fut))  # noqa: RUF006 - fut's callbacks hold it
        else:
            for _ in range(n):
                asyncio.create_task(sleeper(3600))  # noqa: RUF006 - the timer holds it
        while STARTED < n:
            await asyncio.sleep(0)
        report(kind, n, base_kb, t0)

    asyncio.run(main())


def curio_kind(kind: str, n: int) -> None:
    """curio-event: daemon tasks waiting on one curio.Event."""
    import curio

    async def waiter(event: curio.Event) -> None:
        global STARTED
        STARTED += 1
        await event.wait()

    async def main() -> None:
        event = curio.Event()
        base_kb, t0 = baseline()
        for _ in range(n):
            await curio.spawn(waiter, event, daemon=True)
        while STARTED < n:
            await curio.sleep(0)
        report(kind, n, base_kb, t0)

    curio.run(main)


def trio_kind(kind: str, n: int) -> None:
    """trio-event: tasks in one nursery waiting on one trio.Event."""
    import trio

    async def waiter(event: trio.Event) -> None:
        global STARTED
        STARTED += 1
        await event.wait()

    async def main() -> None:
        event = trio.Event()
        async with trio.open_nursery() as nursery:
            base_kb, t0 = baseline()
            for _ in range(n):
                nursery.start_soon(waiter, event)
            while STARTED < n:
                await trio.sleep(0)
            report(kind, n, base_kb, t0)

    trio.run(main)


KINDS: dict[str, Callable[[str, int], None]] = {
    "pyos-wait": pyos_kind, "pyos-sleep": pyos_kind,
    "asyncio-future": asyncio_kind, "asyncio-sleep": asyncio_kind,
    "curio-event": curio_kind, "trio-event": trio_kind,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=list(KINDS))
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args(argv)
    KINDS[args.kind](args.kind, args.tasks)
    return 1  # report() never returns: getting here means the tasks never all blocked


if __name__ == "__main__":
    sys.exit(main())
