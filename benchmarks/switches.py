"""Task switches per second: N tasks each doing M bare yields, on one scheduler.

    python benchmarks/switches.py pyos|asyncio|curio|trio --tasks N --yields M

Why bare yields: a switch with no work and no I/O is the pure cost of going through the
scheduler, which every other operation pays on top of its own work.  pyos tasks are
generators doing a bare ``yield``; the peers' closest equivalent is ``await sleep(0)``.
Each run is a fresh process; the timer spans spawning the tasks through the last exit,
and the rate is N*M / elapsed.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pyos from the checkout


def bench_pyos(tasks: int, yields: int) -> float:
    """pyos: generator tasks doing a bare ``yield`` (the kernel's fast path)."""
    import pyos

    def worker(m: int) -> Iterator[None]:
        for _ in range(m):
            yield

    sched = pyos.Scheduler()
    start = time.perf_counter()
    for _ in range(tasks):
        sched.new(worker(yields))
    sched.mainloop()
    elapsed = time.perf_counter() - start
    sched.close()
    return elapsed


def bench_asyncio(tasks: int, yields: int, uvloop: bool = False) -> float:
    """asyncio: tasks doing ``await asyncio.sleep(0)``, gathered."""
    import asyncio

    async def worker(m: int) -> None:
        for _ in range(m):
            await asyncio.sleep(0)

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(worker(yields) for _ in range(tasks)))
        return time.perf_counter() - start

    if uvloop:
        import uvloop as uv

        return uv.run(main())
    return asyncio.run(main())


def bench_curio(tasks: int, yields: int) -> float:
    """curio: tasks doing ``await curio.sleep(0)`` (its documented way to yield)."""
    import curio

    async def worker(m: int) -> None:
        for _ in range(m):
            await curio.sleep(0)

    async def main() -> float:
        start = time.perf_counter()
        async with curio.TaskGroup() as group:
            for _ in range(tasks):
                await group.spawn(worker, yields)
        return time.perf_counter() - start

    return curio.run(main)


def bench_trio(tasks: int, yields: int) -> float:
    """trio: tasks doing ``await trio.sleep(0)`` (a checkpoint) in one nursery."""
    import trio

    async def worker(m: int) -> None:
        for _ in range(m):
            await trio.sleep(0)

    async def main() -> float:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker, yields)
        return time.perf_counter() - start

    return trio.run(main)


BENCHES: dict[str, Callable[[int, int], float]] = {
    "pyos": bench_pyos,
    "asyncio": bench_asyncio,
    "uvloop": lambda n, m: bench_asyncio(n, m, uvloop=True),
    "curio": bench_curio,
    "trio": bench_trio,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("impl", choices=sorted(BENCHES))
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--yields", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile it; print the top")
    args = parser.parse_args(argv)
    bench = BENCHES[args.impl]
    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            bench(args.tasks, args.yields)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(12)
        return 0
    elapsed = bench(args.tasks, args.yields)
    switches = args.tasks * args.yields
    print(json.dumps({"impl": args.impl, "tasks": args.tasks, "yields": args.yields,
                      "elapsed": elapsed, "per_s": switches / elapsed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
