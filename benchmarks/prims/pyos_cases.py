"""The cases on pyos: generator tasks (``yield``), and async ones (``await``).

A generator task gives up the CPU with a bare ``yield``; an async task with ``_Yield``,
its await-able equivalent (what ``sleep(0)`` is to the peers).
"""

from __future__ import annotations

import time
from typing import Any

from . import CONSUMERS, GATHERED, LOCKERS, PRODUCERS, SLOTS

__all__ = ["pyos_case"]


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
