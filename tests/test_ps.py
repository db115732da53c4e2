"""Introspection: task names, ps (states, runs, stacks) and format_ps.

The SIGUSR1 dump is in test_dump.py, deadlock reports in test_deadlock_report.py,
slow-task warnings in test_slow_task.py and trace mode in test_trace.py.
"""

from __future__ import annotations

import os
import re
import socket

from conftest import fill_socket
from helpers import line_of, ticker_sleep

import pyos
from pyos import (
    KillTask,
    NewTask,
    Ps,
    ReadWait,
    TaskInfo,
    TaskKilled,
    WaitTask,
    WriteWait,
    format_ps,
)

HERE = os.path.basename(__file__)


def ticker():
    yield


def read_wait(sock):
    yield ReadWait(sock)


# -- Names ------------------------------------------------------------------------------
def test_default_and_explicit_names(sched):
    """A task is named after its function's __qualname__ unless given a name."""
    def nested():
        yield

    async def coro():
        pass

    seen = []

    def main():
        yield NewTask(nested(), name="child")
        yield NewTask(ticker())
        seen.extend((yield Ps()))

    sched.new(ticker())
    sched.new(nested())
    sched.new(coro())
    sched.new(ticker(), name="custom")
    sched.new(main())
    assert [i.name for i in sched.ps()] == [
        "ticker", "test_default_and_explicit_names.<locals>.nested",
        "test_default_and_explicit_names.<locals>.coro", "custom",
        "test_default_and_explicit_names.<locals>.main",
    ]
    sched.mainloop()
    assert [(i.tid, i.name) for i in seen[-3:]] == [
        (5, "test_default_and_explicit_names.<locals>.main"), (6, "child"), (7, "ticker"),
    ]


# -- ps ---------------------------------------------------------------------------------
def test_ps_outside_mainloop(sched):
    """Before it first runs a task is ready with no runs and no CPU; afterwards ps is empty."""
    sched.new(ticker(), name="t")
    [info] = sched.ps()
    assert (info.tid, info.name, info.state, info.runs, info.cpu) == (1, "t", "ready", 0, 0.0)
    assert info.stack[-1][2] == "ticker"
    sched.mainloop()
    assert sched.ps() == []


def test_ps_states_of_blocked_tasks(sched, socketpair):
    """Ps shows each task's exact state: sleeping, read/write waits, task waits, ready."""
    reader_sock = socketpair[0]
    other = socket.socketpair()
    writer_sock = other[0]
    writer_sock.setblocking(False)
    fds = reader_sock.fileno(), writer_sock.fileno()
    infos = []

    def joiner(tid):
        try:
            yield WaitTask(tid)
        except TaskKilled:
            pass

    def writer():
        fill_socket(writer_sock)
        yield WriteWait(writer_sock)

    def main():
        sleeper = yield NewTask(ticker_sleep(1.5), name="sleeper")
        reader = yield NewTask(read_wait(reader_sock), name="reader")
        writer_tid = yield NewTask(writer(), name="writer")
        yield NewTask(joiner(sleeper), name="joiner")
        yield                                  # every child runs once and blocks
        yield NewTask(ticker(), name="fresh")
        infos.extend((yield Ps()))
        for tid in (sleeper, reader, writer_tid):
            yield KillTask(tid)

    try:
        sched.new(main(), name="main")
        sched.mainloop()
    finally:
        other[0].close()
        other[1].close()
    states = {i.name: (i.state, i.runs) for i in infos}
    sleeping = states.pop("sleeper")
    assert re.fullmatch(r"sleeping for 1\.\d{3}s more", sleeping[0]), sleeping
    assert 1.0 < float(sleeping[0].split()[2][:-1]) <= 1.5
    assert states == {
        "main": ("running", 1),
        "reader": (f"waiting to read fd {fds[0]}", 1),
        "writer": (f"waiting to write fd {fds[1]}", 1),
        "joiner": ("waiting for task 2", 1),
        "fresh": ("ready", 0),
    }
    assert [i.tid for i in infos] == [1, 2, 3, 4, 5, 6]
    where = {i.name: i.where.split(":")[2] for i in infos}
    assert where == {"main": "main", "sleeper": "ticker_sleep", "reader": "read_wait",
                     "writer": "writer", "joiner": "joiner", "fresh": "ticker"}


def test_ps_counts_runs(sched):
    """runs counts every resume: 3 bare yields then a blocking call make 4 runs."""
    infos = []

    def worker():
        for _ in range(3):
            yield
        yield WaitTask(1)

    def main():
        yield NewTask(worker(), name="worker")
        for _ in range(10):
            yield
        infos.extend((yield Ps()))   # main's 11th run: the one in progress is not counted

    sched.new(main(), name="main")
    sched.mainloop()
    assert [(i.name, i.state, i.runs) for i in infos] == [
        ("main", "running", 10), ("worker", "waiting for task 1", 4),
    ]


def deepest():
    return (yield Ps())


def deeper():
    return (yield from deepest())


def middle():
    return (yield deeper())        # a trampoline call


def test_ps_stack_follows_yield_from_and_trampoline(sched):
    """The stack lists every frame, trampoline and yield-from alike, innermost last."""
    infos = []

    def main():
        infos.extend((yield from middle()))

    sched.new(main(), name="main")
    sched.mainloop()
    [info] = infos
    assert [f[2] for f in info.stack] == ["main", "middle", "deeper", "deepest"]
    assert info.stack[-1][:2] == (__file__, line_of(deepest, "yield Ps()"))
    assert info.where == f"{HERE}:{line_of(deepest, 'yield Ps()')}:deepest"


def test_ps_stack_of_async_task_ends_in_user_code(sched):
    """An async task's stack ends at its own await, not inside SystemCall.__await__."""
    infos = []

    async def inner():
        infos.extend(await Ps())

    async def outer():
        await inner()

    sched.new(outer(), name="outer")
    sched.mainloop()
    [info] = infos
    assert [f[2] for f in info.stack] == ["outer", "inner"]
    assert info.where == f"{HERE}:{line_of(inner, 'await Ps()')}:inner"


def test_where_and_format_ps():
    """format_ps renders a ps-like table; stacks=True adds each frame under its row."""
    sockets_py = os.path.join(os.path.dirname(pyos.__file__), "sockets.py")
    infos = [
        TaskInfo(1, "main", "running", 3, 0.0125,
                 (("/src/prog.py", 10, "main"), (sockets_py, 67, "recv"))),
        TaskInfo(12, "a-very-long-task-name-indeed", "waiting for task 1", 0, 0.0, ()),
        TaskInfo(13, "inside", "ready", 0, 0.0, ((sockets_py, 59, "accept"),)),
    ]
    assert infos[0].where == "prog.py:10:main"   # the program's own frame, not pyos's
    assert infos[1].where == "-"
    assert infos[2].where == "sockets.py:59:accept"  # nothing but pyos: its innermost
    header = ("  TID  NAME                     STATE                            RUNS"
              "   CPU(ms)  WHERE")
    row1 = ("    1  main                     running                             3"
            "      12.5  prog.py:10:main")
    row2 = ("   12  …y-long-task-name-indeed waiting for task 1                  0"
            "       0.0  -")
    assert format_ps(infos[:2]) == "\n".join([header, row1, row2])
    assert format_ps(infos[:2], stacks=True) == "\n".join(
        [header, row1, "       prog.py:10:main", "       sockets.py:67:recv", row2])
    assert format_ps([]) == header


def test_ps_prints_long_sleeps_readably() -> None:
    """Sleep(1e308) reads 'forever', an hour-scale sleep in hours: no 300-digit numbers."""
    states: list[str] = []

    def sleeper(seconds):
        yield pyos.Sleep(seconds)

    def main():
        for seconds in (1e308, 7200):
            yield pyos.NewTask(sleeper(seconds))
        yield
        states.extend(info.state for info in (yield pyos.Ps())[1:])
        for info in (yield pyos.Ps())[1:]:
            yield pyos.KillTask(info.tid)

    pyos.run(main())
    assert states == ["sleeping for forever more", "sleeping for 2.0h more"]
