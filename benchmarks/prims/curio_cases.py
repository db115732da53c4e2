"""The cases on curio: TaskGroup stands in for gather (curio has none)."""

from __future__ import annotations

import time
from typing import Any

from . import CONSUMERS, GATHERED, LOCKERS, PRODUCERS, SLOTS

__all__ = ["curio_case"]


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
