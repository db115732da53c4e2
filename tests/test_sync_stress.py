"""Random schedules of waiters that time out, are cancelled and are killed, on the
virtual clock, checked against invariants: no item of a queue is lost or duplicated,
no two tasks hold a lock at once, no permit is lost, and nothing is left waiting.

Seeded, so a failure is reproducible; every loop is bounded.
"""

from __future__ import annotations

import random

import pytest

import pyos
from pyos import CancelTask, KillTask, Lock, NewTask, Queue, Semaphore, Sleep, TaskTimeout

SEEDS = range(8)
STEPS = 300


def chaos(rng, live, actions=(CancelTask, KillTask)):
    """Cancel or kill a random live task now and then."""
    if live and rng.random() < 0.3:
        yield rng.choice(actions)(rng.choice(sorted(live)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("maxsize", [0, 1, 3])
def test_queue_never_loses_or_duplicates_an_item(seed, maxsize):
    rng = random.Random(seed)
    q = Queue(maxsize, name="q")
    put, got, live = [], [], set()

    def producer(item):
        try:
            if rng.random() < 0.5:
                yield pyos.timeout_after(rng.choice([0, 0.5, 2]), q.put(item))
            else:
                yield q.put(item)
            put.append(item)                 # in the same turn as the put's return
            yield from chaos(rng, live)      # hits a getter just handed the item, maybe
        except (pyos.Cancelled, TaskTimeout):
            pass

    def consumer():
        try:
            if rng.random() < 0.5:
                item = yield pyos.timeout_after(rng.choice([0, 0.5, 2]), q.get())
            else:
                item = yield q.get()
            got.append(item)
            yield from chaos(rng, live)      # hits a putter just handed a slot, maybe
        except (pyos.Cancelled, TaskTimeout):
            pass

    def main():
        for step in range(STEPS):
            target = producer(step) if rng.random() < 0.5 else consumer()
            live.add((yield NewTask(target)))
            yield from chaos(rng, live)
            if rng.random() < 0.3:
                yield Sleep(rng.choice([0, 0.25, 1]))
            live.intersection_update(i.tid for i in (yield pyos.Ps()))
        yield Sleep(1000)                    # settle: no waiter may be left behind
        assert not (len(q._getters) and q.qsize()), "a getter waits beside items"
        assert not (len(q._putters) and q._room()), "a putter waits beside a free slot"
        for tid in sorted(live):
            yield KillTask(tid)
        left = []
        while not q.empty():
            left.append(q.get_nowait())
        return left

    left = pyos.run(main(), clock=pyos.VirtualClock())
    assert sorted(got + left) == sorted(put)            # nothing lost, nothing twice
    assert len(set(put)) == len(put)
    assert (len(q._getters), len(q._putters), q._reserved) == (0, 0, 0)
    assert maxsize == 0 or len(left) <= maxsize + q._unfinished   # (over only by give-backs)


@pytest.mark.parametrize("seed", SEEDS)
def test_lock_is_never_held_twice_and_ends_free(seed):
    rng = random.Random(seed)
    lock = Lock("l")
    holder, entries, live = [None], [], set()

    def worker(n):
        try:
            acquire = lock.acquire()
            if rng.random() < 0.5:
                acquire = pyos.timeout_after(rng.choice([0, 0.5, 2]), acquire)
            with (yield acquire):
                assert holder[0] is None, f"{n} entered while {holder[0]} held the lock"
                holder[0] = n
                entries.append(n)
                try:
                    yield Sleep(rng.choice([0, 0.25, 1]))
                finally:
                    holder[0] = None
            yield from chaos(rng, live)      # hits the waiter just handed the lock, maybe
        except (pyos.Cancelled, TaskTimeout):
            pass

    def main():
        for step in range(STEPS):
            live.add((yield NewTask(worker(step))))
            yield from chaos(rng, live)
            if rng.random() < 0.3:
                yield Sleep(rng.choice([0, 0.25, 1]))
            live.intersection_update(i.tid for i in (yield pyos.Ps()))
        yield Sleep(1000)                                    # the rest finish

    pyos.run(main(), clock=pyos.VirtualClock())
    assert entries and not lock.locked() and lock.owner is None
    assert len(lock._waiters) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_semaphore_never_exceeds_its_value_and_gets_every_permit_back(seed):
    rng = random.Random(seed)
    sem = Semaphore(3, name="s")
    inside, peak, live = [0], [0], set()

    async def worker():
        try:
            async with sem:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                assert inside[0] <= 3
                try:
                    await Sleep(rng.choice([0, 0.25, 1]))
                finally:
                    inside[0] -= 1
            if live and rng.random() < 0.3:  # hits the waiter just handed the permit, maybe
                await rng.choice((CancelTask, KillTask))(rng.choice(sorted(live)))
        except pyos.Cancelled:
            pass

    def main():
        for _ in range(STEPS):
            live.add((yield NewTask(worker())))
            yield from chaos(rng, live)
            if rng.random() < 0.3:
                yield Sleep(rng.choice([0, 0.25, 1]))
            live.intersection_update(i.tid for i in (yield pyos.Ps()))
        yield Sleep(1000)

    pyos.run(main(), clock=pyos.VirtualClock())
    assert peak[0] == 3 and sem.value == 3 and len(sem._waiters) == 0
