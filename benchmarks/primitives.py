"""Coordination primitives: pyos's queues, locks, events and gather beside the peers'.

    python benchmarks/primitives.py CASE IMPL [--scale S]

CASE is one of:

* ``pingpong``: two tasks bounce an item through two queues (a round trip is a put and
  a get each way, and two task switches);
* ``bounded``: 10 producers and 10 consumers through one queue of 10 slots;
* ``lock``: 100 tasks take turns at one lock, each yielding once while it holds it;
* ``event``: 10,000 tasks wait for one event; timed from ``set()`` until every one has
  run (each then waits again, so that task exits are not what is timed);
* ``gather``: gather 1,000 tasks that each yield once and return a value;
* ``uncontended``: acquire and release a lock nobody else wants (the fast path).

IMPL is pyos (generator tasks), pyos-async (async tasks), asyncio, curio or trio.  trio
has no queue: its memory channels stand in (the same work).  Peers yield with
``sleep(0)``, pyos tasks with a bare ``yield`` (a generator task's way to give up the
CPU).  Each run is a fresh process; prints one JSON object with ``per_s``, operations
per second.  ``benchmarks/run.py --only primitives`` runs them all, interleaved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pyos from the checkout

#: operations per case at scale 1 (what per_s counts)
SIZES = {"pingpong": 20_000, "bounded": 20_000, "lock": 10_000, "event": 10_000,
         "gather": 10_000, "uncontended": 200_000}
PRODUCERS = CONSUMERS = SLOTS = 10
LOCKERS = 100
GATHERED = 1_000


# -- pyos: generator tasks, and async ones --------------------------------------------------
def pyos_case(case: str, n: int, use_async: bool) -> float:
    import pyos

    body = (_pyos_async if use_async else _pyos_gen)(pyos, case, n)

    def main() -> Any:
        start = time.perf_counter()
        own = yield body                   # the event case times itself, from set() on
        return own if isinstance(own, float) else time.perf_counter() - start

    return pyos.run(main())  # type: ignore[no-any-return]


def _pyos_gen(pyos: Any, case: str, n: int) -> Any:
    if case == "pingpong":
        ping, pong = pyos.Queue(), pyos.Queue()

        def echo() -> Any:
            for _ in range(n):
                yield pong.put((yield ping.get()))

        def run() -> Any:
            tid = yield pyos.NewTask(echo())
            for i in range(n):
                yield ping.put(i)
                yield pong.get()
            yield pyos.WaitTask(tid)
        return run()
    if case == "bounded":
        q = pyos.Queue(SLOTS)

        def produce(m: int) -> Any:
            for i in range(m):
                yield q.put(i)

        def consume(m: int) -> Any:
            for _ in range(m):
                yield q.get()
        return pyos.gather(*(produce(n // PRODUCERS) for _ in range(PRODUCERS)),
                           *(consume(n // CONSUMERS) for _ in range(CONSUMERS)))
    if case == "lock":
        lock = pyos.Lock()

        def locker(m: int) -> Any:
            for _ in range(m):
                with (yield lock.acquire()):
                    yield
        return pyos.gather(*(locker(n // LOCKERS) for _ in range(LOCKERS)))
    if case == "event":
        return _pyos_event(pyos, n, use_async=False)
    if case == "gather":
        def child(i: int) -> Any:
            yield
            return i

        def run() -> Any:
            for _ in range(n // GATHERED):
                yield pyos.gather(*(child(i) for i in range(GATHERED)))
        return run()
    if case == "uncontended":
        lock = pyos.Lock()

        def run() -> Any:
            for _ in range(n):
                with (yield lock.acquire()):
                    pass
        return run()
    raise ValueError(case)


def _pyos_async(pyos: Any, case: str, n: int) -> Any:
    if case == "pingpong":
        ping, pong = pyos.Queue(), pyos.Queue()

        async def echo() -> None:
            for _ in range(n):
                await pong.put(await ping.get())

        async def run() -> None:
            tid = await pyos.NewTask(echo())
            for i in range(n):
                await ping.put(i)
                await pong.get()
            await pyos.WaitTask(tid)
        return run()
    if case == "bounded":
        q = pyos.Queue(SLOTS)

        async def produce(m: int) -> None:
            for i in range(m):
                await q.put(i)

        async def consume(m: int) -> None:
            for _ in range(m):
                await q.get()
        return pyos.gather(*(produce(n // PRODUCERS) for _ in range(PRODUCERS)),
                           *(consume(n // CONSUMERS) for _ in range(CONSUMERS)))
    if case == "lock":
        lock = pyos.Lock()

        async def locker(m: int) -> None:
            for _ in range(m):
                async with lock:
                    await _Yield()
        return pyos.gather(*(locker(n // LOCKERS) for _ in range(LOCKERS)))
    if case == "event":
        return _pyos_event(pyos, n, use_async=True)
    if case == "gather":
        async def child(i: int) -> int:
            await _Yield()
            return i

        async def run_gathers() -> None:
            for _ in range(n // GATHERED):
                await pyos.gather(*(child(i) for i in range(GATHERED)))
        return run_gathers()
    if case == "uncontended":
        lock = pyos.Lock()

        async def run() -> None:
            for _ in range(n):
                async with lock:
                    pass
        return run()
    raise ValueError(case)


class _Yield:
    """A bare yield for an async task (what sleep(0) is to the peers)."""

    def __await__(self) -> Any:
        yield


def _pyos_event(pyos: Any, n: int, use_async: bool) -> Any:
    event, done, finish = pyos.Event(), pyos.Event(), pyos.Event()
    left = [n]

    def wake() -> None:
        left[0] -= 1
        if not left[0]:
            done.set()

    def gen_waiter() -> Any:
        yield event.wait()
        wake()
        yield finish.wait()

    async def async_waiter() -> None:
        await event.wait()
        wake()
        await finish.wait()

    def run() -> Any:
        for _ in range(n):
            yield pyos.NewTask(async_waiter() if use_async else gen_waiter())
        yield pyos.Sleep(0)                 # every waiter parks
        start = time.perf_counter()
        event.set()
        yield done.wait()
        elapsed = time.perf_counter() - start
        finish.set()                        # (their exits are not what is measured)
        yield pyos.Sleep(0)                 # they exit before main returns its value
        return elapsed
    return run()


# -- asyncio ----------------------------------------------------------------------------------
def asyncio_case(case: str, n: int) -> float:
    import asyncio

    async def main() -> float:
        start = time.perf_counter()
        if case == "pingpong":
            ping: asyncio.Queue[int] = asyncio.Queue()
            pong: asyncio.Queue[int] = asyncio.Queue()

            async def echo() -> None:
                for _ in range(n):
                    await pong.put(await ping.get())
            task = asyncio.create_task(echo())
            for i in range(n):
                await ping.put(i)
                await pong.get()
            await task
        elif case == "bounded":
            q: asyncio.Queue[int] = asyncio.Queue(SLOTS)

            async def produce(m: int) -> None:
                for i in range(m):
                    await q.put(i)

            async def consume(m: int) -> None:
                for _ in range(m):
                    await q.get()
            await asyncio.gather(*(produce(n // PRODUCERS) for _ in range(PRODUCERS)),
                                 *(consume(n // CONSUMERS) for _ in range(CONSUMERS)))
        elif case == "lock":
            lock = asyncio.Lock()

            async def locker(m: int) -> None:
                for _ in range(m):
                    async with lock:
                        await asyncio.sleep(0)
            await asyncio.gather(*(locker(n // LOCKERS) for _ in range(LOCKERS)))
        elif case == "event":
            event, done, finish = asyncio.Event(), asyncio.Event(), asyncio.Event()
            left = [n]

            async def waiter() -> None:
                await event.wait()
                left[0] -= 1
                if not left[0]:
                    done.set()
                await finish.wait()
            tasks = [asyncio.create_task(waiter()) for _ in range(n)]
            await asyncio.sleep(0)
            start = time.perf_counter()
            event.set()
            await done.wait()
            elapsed = time.perf_counter() - start
            finish.set()
            await asyncio.gather(*tasks)
            return elapsed
        elif case == "gather":
            async def child(i: int) -> int:
                await asyncio.sleep(0)
                return i
            for _ in range(n // GATHERED):
                await asyncio.gather(*(child(i) for i in range(GATHERED)))
        elif case == "uncontended":
            lock = asyncio.Lock()
            for _ in range(n):
                async with lock:
                    pass
        return time.perf_counter() - start

    return asyncio.run(main())


# -- curio ------------------------------------------------------------------------------------
def curio_case(case: str, n: int) -> float:
    import curio

    async def spawn_all(*coros: Any) -> list[Any]:
        async with curio.TaskGroup() as group:
            for coro in coros:
                await group.spawn(coro)
        return group.results  # type: ignore[no-any-return]

    async def main() -> float:
        start = time.perf_counter()
        if case == "pingpong":
            ping, pong = curio.Queue(), curio.Queue()

            async def echo() -> None:
                for _ in range(n):
                    await pong.put(await ping.get())
            task = await curio.spawn(echo)
            for i in range(n):
                await ping.put(i)
                await pong.get()
            await task.join()
        elif case == "bounded":
            q = curio.Queue(SLOTS)

            async def produce(m: int) -> None:
                for i in range(m):
                    await q.put(i)

            async def consume(m: int) -> None:
                for _ in range(m):
                    await q.get()
            await spawn_all(*(produce(n // PRODUCERS) for _ in range(PRODUCERS)),
                            *(consume(n // CONSUMERS) for _ in range(CONSUMERS)))
        elif case == "lock":
            lock = curio.Lock()

            async def locker(m: int) -> None:
                for _ in range(m):
                    async with lock:
                        await curio.sleep(0)
            await spawn_all(*(locker(n // LOCKERS) for _ in range(LOCKERS)))
        elif case == "event":
            event, done, finish = curio.Event(), curio.Event(), curio.Event()
            left = [n]

            async def waiter() -> None:
                await event.wait()
                left[0] -= 1
                if not left[0]:
                    await done.set()
                await finish.wait()
            async with curio.TaskGroup() as group:
                for _ in range(n):
                    await group.spawn(waiter)
                await curio.sleep(0)
                start = time.perf_counter()
                await event.set()
                await done.wait()
                elapsed = time.perf_counter() - start
                await finish.set()
            return elapsed
        elif case == "gather":
            async def child(i: int) -> int:
                await curio.sleep(0)
                return i
            for _ in range(n // GATHERED):
                await spawn_all(*(child(i) for i in range(GATHERED)))
        elif case == "uncontended":
            lock = curio.Lock()
            for _ in range(n):
                async with lock:
                    pass
        return time.perf_counter() - start

    return curio.run(main)  # type: ignore[no-any-return]


# -- trio -------------------------------------------------------------------------------------
def trio_case(case: str, n: int) -> float:
    import math

    import trio

    async def main() -> float:
        start = time.perf_counter()
        if case == "pingpong":
            ping_tx, ping_rx = trio.open_memory_channel(math.inf)
            pong_tx, pong_rx = trio.open_memory_channel(math.inf)

            async def echo() -> None:
                for _ in range(n):
                    await pong_tx.send(await ping_rx.receive())
            async with trio.open_nursery() as nursery:
                nursery.start_soon(echo)
                for i in range(n):
                    await ping_tx.send(i)
                    await pong_rx.receive()
        elif case == "bounded":
            tx, rx = trio.open_memory_channel(SLOTS)

            async def produce(m: int) -> None:
                for i in range(m):
                    await tx.send(i)

            async def consume(m: int) -> None:
                for _ in range(m):
                    await rx.receive()
            async with trio.open_nursery() as nursery:
                for _ in range(PRODUCERS):
                    nursery.start_soon(produce, n // PRODUCERS)
                for _ in range(CONSUMERS):
                    nursery.start_soon(consume, n // CONSUMERS)
        elif case == "lock":
            lock = trio.Lock()

            async def locker(m: int) -> None:
                for _ in range(m):
                    async with lock:
                        await trio.sleep(0)
            async with trio.open_nursery() as nursery:
                for _ in range(LOCKERS):
                    nursery.start_soon(locker, n // LOCKERS)
        elif case == "event":
            event, done, finish = trio.Event(), trio.Event(), trio.Event()
            left = [n]

            async def waiter() -> None:
                await event.wait()
                left[0] -= 1
                if not left[0]:
                    done.set()
                await finish.wait()
            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(waiter)
                await trio.sleep(0)
                start = time.perf_counter()
                event.set()
                await done.wait()
                elapsed = time.perf_counter() - start
                finish.set()
            return elapsed
        elif case == "gather":
            async def child(i: int, results: list[int]) -> None:
                await trio.sleep(0)
                results[i] = i
            for _ in range(n // GATHERED):
                results = [0] * GATHERED
                async with trio.open_nursery() as nursery:
                    for i in range(GATHERED):
                        nursery.start_soon(child, i, results)
        elif case == "uncontended":
            lock = trio.Lock()
            for _ in range(n):
                async with lock:
                    pass
        return time.perf_counter() - start

    return trio.run(main)  # type: ignore[no-any-return]


IMPLS: dict[str, Callable[[str, int], float]] = {
    "pyos": lambda case, n: pyos_case(case, n, use_async=False),
    "pyos-async": lambda case, n: pyos_case(case, n, use_async=True),
    "asyncio": asyncio_case,
    "curio": curio_case,
    "trio": trio_case,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=sorted(SIZES))
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes")
    args = parser.parse_args(argv)
    n = max(GATHERED, int(SIZES[args.case] * args.scale))
    try:
        elapsed = IMPLS[args.impl](args.case, n)
    except ValueError as exc:
        print(json.dumps({"case": args.case, "impl": args.impl, "error": str(exc)}))
        return 0
    print(json.dumps({"case": args.case, "impl": args.impl, "ops": n, "elapsed": elapsed,
                      "per_s": n / elapsed}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
