"""Queue, LifoQueue and PriorityQueue (pyos/queues.py), on the virtual clock.

Ordered records; generator and async tasks; getters and putters that leave (cancel,
timeout, kill) while waiting and after an item or a slot was handed to them; shutdown
as in CPython 3.13; join and task_done; ps wording.  Waiter counts go back to zero.
"""

from __future__ import annotations

import pytest

import pyos
from pyos import (
    CancelTask,
    KillTask,
    LifoQueue,
    NewTask,
    PriorityQueue,
    Ps,
    Queue,
    QueueEmpty,
    QueueFull,
    QueueShutDown,
    Sleep,
    TaskTimeout,
    WaitTask,
    timeout_after,
)


def run(main):
    return pyos.run(main, clock=pyos.VirtualClock())


def getter(q, record, n):
    record.append((n, "got", (yield q.get())))


async def async_getter(q, record, n):
    record.append((n, "got", await q.get()))


def putter(q, record, item):
    yield q.put(item)
    record.append(("put", item))


def join(q):
    yield q.join()


def counts(q):
    return len(q._getters), len(q._putters), q._reserved


# -- Basics ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "order"), [(Queue, [3, 1, 2]), (LifoQueue, [2, 1, 3]),
                                            (PriorityQueue, [1, 2, 3])])
def test_order_sizes_and_nowait_errors(cls, order):
    q = cls(maxsize=3, name="q")

    def main():
        for item in (3, 1):
            yield q.put(item)
        q.put_nowait(2)
        assert (q.qsize(), q.full(), q.empty(), q.maxsize) == (3, True, False, 3)
        with pytest.raises(QueueFull):
            q.put_nowait(4)
        got = [(yield q.get()), q.get_nowait(), (yield q.get())]
        with pytest.raises(QueueEmpty):
            q.get_nowait()
        return got

    assert run(main()) == order
    assert issubclass(QueueFull, pyos.PyosError) and issubclass(QueueEmpty, pyos.PyosError)


def test_get_and_put_that_need_not_wait_make_no_system_call(caplog):
    q = Queue(maxsize=2)

    async def main():
        for n in range(2):
            await q.put(n)
        return [await q.get(), await q.get()]

    caplog.set_level("INFO", logger="pyos")
    assert pyos.run(main(), trace=True) == [0, 1]
    assert [r.getMessage() for r in caplog.records if "->" in r.getMessage()] == []


# -- Getters: fairness, hand-off, leaving -------------------------------------------------
def test_put_hands_the_item_to_the_oldest_getter_no_barging():
    record = []
    q = Queue(name="jobs")

    def main():
        for n in range(3):
            yield NewTask(getter(q, record, n) if n != 1 else async_getter(q, record, n),
                          name=f"g{n}")
        yield Sleep(1)
        record.append({i.name: i.state for i in (yield Ps())}["g0"])
        q.put_nowait("a")
        with pytest.raises(QueueEmpty):       # handed to getter 0: nobody else takes it
            q.get_nowait()
        yield q.put("b")
        yield q.put("c")
        yield Sleep(1)
        record.append(counts(q))

    run(main())
    assert record == ["waiting to get from Queue 'jobs'", (0, "got", "a"), (1, "got", "b"),
                      (2, "got", "c"), (0, 0, 0)]


@pytest.mark.parametrize("how", ["cancel", "timeout", "kill"])
def test_a_getter_that_leaves_takes_nothing_and_the_next_is_served(how):
    record = []
    q = Queue(name="jobs")

    def leaver():
        try:
            item = yield (timeout_after(1, q.get()) if how == "timeout" else q.get())
            record.append(("leaver got", item))
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append(type(exc).__name__)
            raise

    def main():
        tid = yield NewTask(leaver())
        yield NewTask(getter(q, record, 2))
        yield Sleep(0.5)
        if how == "cancel":
            yield CancelTask(tid)
        elif how == "kill":
            yield KillTask(tid)
        yield Sleep(1)
        q.put_nowait("x")
        yield Sleep(1)
        record.append((q.qsize(), counts(q)))

    run(main())
    left = {"cancel": ["Cancelled"], "timeout": ["TaskTimeout"], "kill": []}[how]
    assert record == [*left, (2, "got", "x"), (0, (0, 0, 0))]


@pytest.mark.parametrize(("cls", "after"), [(Queue, ["a", "b"]), (LifoQueue, ["a", "b"]),
                                            (PriorityQueue, ["a", "b"])])
def test_item_handed_to_a_getter_killed_before_it_runs_goes_back_to_the_front(cls, after):
    q = cls(maxsize=1, name="q")

    def main():
        tid = yield NewTask(getter(q, [], 1))
        yield Sleep(1)
        q.put_nowait("a")                     # handed to the getter: out of the queue
        with pytest.raises(QueueEmpty):
            q.get_nowait()
        q.put_nowait("b")
        assert q.full() and q.qsize() == 1
        yield KillTask(tid)                   # "a" comes back, one more than maxsize
        assert q.qsize() == 2 and counts(q) == (0, 0, 0)
        return [q.get_nowait(), q.get_nowait()]

    assert run(main()) == after


def test_item_handed_to_a_killed_getter_goes_to_the_next_getter():
    record = []
    q = Queue()

    def main():
        first = yield NewTask(getter(q, record, 1))
        yield NewTask(getter(q, record, 2))
        yield Sleep(1)
        q.put_nowait("a")
        yield KillTask(first)
        yield Sleep(1)
        record.append((q.qsize(), counts(q)))

    run(main())
    assert record == [(2, "got", "a"), (0, (0, 0, 0))]


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_item_handed_over_stays_with_its_getter_when_a_cancel_follows(how):
    record = []
    q = Queue()

    def get_then_block():
        try:
            with (yield timeout_after(1)):
                record.append(("got", (yield q.get())))
                yield Sleep(1)
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append(type(exc).__name__)

    def main():
        tid = yield NewTask(get_then_block())
        yield Sleep(0.5)
        if how == "timeout":
            clock.advance(0.5)                # the deadline is due, not yet seen
        q.put_nowait("a")
        if how == "cancel":
            yield CancelTask(tid)
        yield WaitTask(tid)
        record.append(q.qsize())

    clock = pyos.VirtualClock()
    pyos.run(main(), clock=clock)
    assert record == [("got", "a"), "Cancelled" if how == "cancel" else "TaskTimeout", 0]


# -- Putters: slots --------------------------------------------------------------------------
def test_putters_wait_in_order_and_a_get_hands_the_slot_over():
    record = []
    q = Queue(maxsize=1, name="jobs")

    async def async_putter(item):
        await q.put(item)
        record.append(("put", item))

    def main():
        q.put_nowait("a")
        yield NewTask(putter(q, record, "b"), name="p")
        yield NewTask(async_putter("c"))
        yield Sleep(1)
        record.append({i.name: i.state for i in (yield Ps())}["p"])
        record.append(q.get_nowait())
        with pytest.raises(QueueFull):         # the slot is the waiting putter's
            q.put_nowait("x")
        for _ in range(2):
            record.append((yield q.get()))
        record.append((q.qsize(), counts(q)))

    run(main())
    assert record == ["waiting to put into Queue 'jobs'", "a", ("put", "b"), "b", ("put", "c"),
                      "c", (0, (0, 0, 0))]


@pytest.mark.parametrize("how", ["cancel", "timeout", "kill"])
def test_a_put_that_leaves_puts_nothing_and_takes_no_slot(how):
    record = []
    q = Queue(maxsize=1)

    def leaver():
        try:
            yield (timeout_after(1, q.put("y")) if how == "timeout" else q.put("y"))
        except (pyos.Cancelled, TaskTimeout) as exc:
            record.append(type(exc).__name__)
            raise

    def main():
        q.put_nowait("x")
        tid = yield NewTask(leaver())
        yield NewTask(putter(q, record, "z"))
        yield Sleep(0.5)
        if how == "cancel":
            yield CancelTask(tid)
        elif how == "kill":
            yield KillTask(tid)
        yield Sleep(1)
        record.append(q.get_nowait())
        yield Sleep(0)
        record.append(q.get_nowait())
        q.put_nowait("w")                      # nothing left behind holds the one slot
        record.append((q.qsize(), counts(q), q._unfinished))

    run(main())
    left = {"cancel": ["Cancelled"], "timeout": ["TaskTimeout"], "kill": []}[how]
    assert record == [*left, "x", ("put", "z"), "z", (1, (0, 0, 0), 3)]


def test_slot_handed_to_a_putter_killed_before_it_runs_goes_to_the_next():
    record = []
    q = Queue(maxsize=1)

    def main():
        q.put_nowait("x")
        first = yield NewTask(putter(q, record, "y"))
        yield NewTask(putter(q, record, "z"))
        yield Sleep(1)
        q.get_nowait()                         # the slot goes to the first putter...
        yield KillTask(first)                  # ...which dies before it runs
        yield Sleep(1)
        record.append((q.get_nowait(), q.qsize(), counts(q)))

    run(main())
    assert record == [("put", "z"), ("z", 0, (0, 0, 0))]


def test_slot_handed_over_is_used_even_if_a_cancel_follows():
    record = []
    q = Queue(maxsize=1)

    def put_then_block():
        yield q.put("y")
        record.append("put done")
        try:
            yield Sleep(1)
        except pyos.Cancelled:
            record.append("cancelled later")

    def main():
        q.put_nowait("x")
        tid = yield NewTask(put_then_block())
        yield Sleep(1)
        q.get_nowait()
        yield CancelTask(tid)
        yield WaitTask(tid)
        record.append(q.get_nowait())

    run(main())
    assert record == ["put done", "cancelled later", "y"]


# -- join and task_done ------------------------------------------------------------------------
def test_join_waits_for_task_done():
    record = []
    q = Queue(name="jobs")

    def worker():
        while True:
            item = yield q.get()
            yield Sleep(1)
            record.append(("done", item))
            q.task_done()

    def main():
        yield q.join()                           # nothing unfinished: at once
        for item in "ab":
            q.put_nowait(item)
        tid = yield NewTask(worker())
        joiner = yield NewTask(join(q), name="joiner")
        yield Sleep(0.5)
        record.append({i.name: i.state for i in (yield Ps())}["joiner"])
        yield WaitTask(joiner)
        record.append("joined")
        yield KillTask(tid)
        with pytest.raises(ValueError):
            q.task_done()

    run(main())
    assert record == ["waiting for Queue 'jobs' to be done (2 unfinished)", ("done", "a"),
                      ("done", "b"), "joined"]


# -- Shutdown ------------------------------------------------------------------------------
def test_shutdown_lets_gets_drain_then_refuses_and_wakes_putters():
    record = []
    q = Queue(maxsize=1, name="q")

    def blocked_putter():
        try:
            yield q.put("late")
        except QueueShutDown:
            record.append("putter: shut down")

    def main():
        q.put_nowait("a")
        yield NewTask(blocked_putter())
        yield Sleep(1)
        q.shutdown()
        with pytest.raises(QueueShutDown):
            q.put_nowait("b")
        with pytest.raises(QueueShutDown):
            yield q.put("b")
        record.append((yield q.get()))
        with pytest.raises(QueueShutDown):
            yield q.get()
        with pytest.raises(QueueShutDown):
            q.get_nowait()
        yield Sleep(1)
        record.append((q.qsize(), counts(q)))

    run(main())
    assert record == ["a", "putter: shut down", (0, (0, 0, 0))]


def test_shutdown_wakes_waiting_getters_and_ends_async_for():
    record = []
    q, later = Queue(name="q"), Queue(name="later")

    async def consumer(queue):
        async for item in queue:
            record.append(("item", item))
        record.append(("loop ended", queue.name))

    def shut_out_getter():
        try:
            yield q.get()
        except QueueShutDown:
            record.append("getter: shut down")

    def main():
        yield NewTask(consumer(q))
        yield NewTask(getter(q, record, 2))
        yield NewTask(shut_out_getter())
        yield Sleep(1)
        q.put_nowait("a")                       # handed to the consumer
        q.put_nowait("b")                       # handed to getter 2
        q.shutdown()                            # the third getter finds it shut down
        for item in "xy":
            later.put_nowait(item)
        later.shutdown()                        # items left: async for drains them first
        yield NewTask(consumer(later))
        yield Sleep(1)

    run(main())
    assert record == [("item", "a"), ("loop ended", "q"), (2, "got", "b"), "getter: shut down",
                      ("item", "x"), ("item", "y"), ("loop ended", "later")]


def test_putter_woken_for_a_slot_but_shut_down_before_it_ran_puts_nothing():
    record = []
    q = Queue(maxsize=1)

    def main():
        q.put_nowait("x")
        tid = yield NewTask(putter(q, record, "y"))
        yield Sleep(1)
        q.get_nowait()                          # slot handed over...
        q.shutdown()                            # ...then the queue shuts down
        with pytest.raises(pyos.TaskError) as info:
            yield WaitTask(tid)
        record.append((type(info.value.__cause__).__name__, q.qsize(), counts(q)))

    run(main())
    assert record == [("QueueShutDown", 0, (0, 0, 0))]


def test_immediate_shutdown_drops_items_and_releases_join():
    record = []
    q = Queue(name="q")

    def main():
        for item in "abc":
            q.put_nowait(item)
        q.get_nowait()                           # taken, never marked done
        joiner = yield NewTask(join(q))
        yield Sleep(1)
        q.shutdown(immediate=True)
        record.append((q.qsize(), q._unfinished))
        with pytest.raises(QueueShutDown):
            q.get_nowait()
        q.task_done()
        yield WaitTask(joiner)
        record.append("joined")

    run(main())
    assert record == [(0, 1), "joined"]


def test_item_handed_to_a_killed_getter_after_immediate_shutdown_is_dropped():
    q = Queue()

    def main():
        tid = yield NewTask(getter(q, [], 1))
        yield Sleep(1)
        q.put_nowait("a")
        q.shutdown(immediate=True)
        yield KillTask(tid)
        yield q.join()                           # counted as done with the others
        return (q.qsize(), counts(q))

    assert run(main()) == (0, (0, 0, 0))
