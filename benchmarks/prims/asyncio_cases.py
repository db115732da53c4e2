"""The cases on asyncio, written as asyncio code is: tasks, gather, asyncio.Queue."""

from __future__ import annotations

import time

from . import CONSUMERS, GATHERED, LOCKERS, PRODUCERS, SLOTS

__all__ = ["asyncio_case"]


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
