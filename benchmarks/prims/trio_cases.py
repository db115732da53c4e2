"""The cases on trio: nurseries stand in for gather, memory channels for a queue."""

from __future__ import annotations

import time

from . import CONSUMERS, GATHERED, LOCKERS, PRODUCERS, SLOTS

__all__ = ["trio_case"]


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
