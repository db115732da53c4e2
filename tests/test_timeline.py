"""The timeline's recorder: what it records, parsed back from the Chrome trace it writes
and checked against what the tasks did (their own ordered record lists, timed with
perf_counter as the timeline is).  When and where it is written: test_timeline_file.py.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from time import perf_counter

import pytest
from helpers import load_trace, trace_slices

import pyos
from pyos import CancelTask, GetTid, KillTask, NewTask, ReadWait, Sleep, WaitTask


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment's PYOS_TIMELINE, if any, must not leak into these tests."""
    monkeypatch.delenv("PYOS_TIMELINE", raising=False)


def since_origin(trace: dict, t: float) -> float:
    """A perf_counter reading as the trace's microseconds."""
    return (t - trace["otherData"]["origin"]) * 1e6


def inside(trace: dict, t: float, e: dict) -> bool:
    return e["ts"] <= since_origin(trace, t) <= e["ts"] + e["dur"]


def test_two_tasks_taking_turns_draw_alternating_slices(tmp_path):
    """Each step a task records falls inside its own run slice, in the same order."""
    steps: list[tuple[int, float]] = []

    def worker(n):
        tid = yield GetTid()
        for _ in range(n):
            steps.append((tid, perf_counter()))
            yield

    path = tmp_path / "run.json"
    sched = pyos.Scheduler(timeline=path)
    sched.new(worker(3), name="a")
    sched.new(worker(3), name="b")
    sched.mainloop()
    sched.close()
    trace = load_trace(path)
    runs = trace_slices(trace, "run")
    assert [e["tid"] for e in runs] == [1, 2] * 4   # 3 yields each, then the step that ends
    assert [tid for tid, _ in steps] == [1, 2] * 3
    for (tid, t), e in zip(steps, runs, strict=False):
        assert e["tid"] == tid and inside(trace, t, e), (tid, since_origin(trace, t), e)
    assert all(e["dur"] >= 0 for e in runs)
    assert trace_slices(trace, "wait") == []              # bare yields are not waits


def test_rows_are_named_tid_and_name_and_sorted_by_tid(tmp_path):
    path = tmp_path / "run.json"

    def main():
        yield NewTask(idle(), name="worker")
        yield NewTask(idle(), name="client 5000")

    def idle():
        yield

    pyos.run(main(), timeline=path)
    meta = [e for e in load_trace(path)["traceEvents"] if e["ph"] == "M"]
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    order = {e["tid"]: e["args"]["sort_index"] for e in meta if e["name"] == "thread_sort_index"}
    assert names == {1: f"1 {main.__qualname__}", 2: "2 worker", 3: "3 client 5000"}
    assert order == {1: 1, 2: 2, 3: 3}
    assert [e["args"]["name"] for e in meta if e["name"] == "process_name"] == [
        f"pyos (pid {os.getpid()})"]


def test_a_sleep_is_a_wait_named_sleeping_woken_by_the_timer(tmp_path):
    """On a virtual clock the name gives the sleep's virtual length, the slice real time."""
    path = tmp_path / "run.json"

    def sleeper():
        yield Sleep(5)

    pyos.run(sleeper(), timeline=path, clock=pyos.VirtualClock())
    trace = load_trace(path)
    [wait] = trace_slices(trace, "wait")
    assert wait["name"] == "sleeping for 5.000s more"
    assert wait["args"] == {"woken_by": "timer"}
    assert wait["dur"] < 1e6                         # real time: 5 virtual s took no time
    [run1, run2] = trace_slices(trace, "run")
    assert run1["ts"] + run1["dur"] == pytest.approx(wait["ts"])   # it blocked as it yielded
    assert wait["ts"] + wait["dur"] <= run2["ts"]
    wakes = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["cat"] == "wake"]
    assert [(e["name"], e["ts"]) for e in wakes] == [
        ("woken by timer", pytest.approx(wait["ts"] + wait["dur"]))]


@pytest.mark.parametrize("poller", ["epoll", "select"])
def test_a_task_blocked_on_a_socket_waits_to_read_its_fd(tmp_path, poller):
    path = tmp_path / "run.json"
    a, b = socket.socketpair()
    got = []

    def reader():
        yield ReadWait(a)
        got.append(a.recv(10))

    def writer():
        for _ in range(3):
            yield
        b.send(b"hi")

    with a, b:
        a.setblocking(False)
        sched = pyos.Scheduler(poller=poller, timeline=path)
        sched.new(reader(), name="reader")
        sched.new(writer(), name="writer")
        sched.mainloop()
        sched.close()
        fd = a.fileno()
    assert got == [b"hi"]
    trace = load_trace(path)
    [wait] = trace_slices(trace, "wait", tid=1)
    assert wait["name"] == f"waiting to read fd {fd}"
    assert wait["args"] == {"woken_by": "I/O"}
    [writer_end] = [e for e in trace_slices(trace, "run", tid=2)][-1:]
    assert wait["ts"] + wait["dur"] >= writer_end["ts"] + writer_end["dur"]  # after the send


def test_a_task_woken_by_another_gets_an_arrow_from_its_slice(tmp_path):
    """WaitTask: the waiter's wait ends in the child's last step; a flow joins the two."""
    path = tmp_path / "run.json"

    def child():
        yield
        return 42

    def main():
        tid = yield NewTask(child(), name="child")
        return (yield WaitTask(tid))

    assert pyos.run(main(), timeline=path) == 42
    trace = load_trace(path)
    [wait] = trace_slices(trace, "wait", tid=1)
    assert wait["name"] == "waiting for task 2"
    assert wait["args"] == {"woken_by": "task 2 (child)"}
    start, end = [e for e in trace["traceEvents"] if e["ph"] in "sf"]
    child_last = trace_slices(trace, "run", tid=2)[-1]
    main_next = next(e for e in trace_slices(trace, "run", tid=1) if e["ts"] >= wait["ts"])
    assert (start["ph"], start["tid"], end["ph"], end["tid"]) == ("s", 2, "f", 1)
    assert start["id"] == end["id"] and end["bp"] == "e"
    assert child_last["ts"] < start["ts"] < child_last["ts"] + child_last["dur"]
    assert main_next["ts"] < end["ts"] < main_next["ts"] + main_next["dur"]


def test_exits_are_marked_with_how_the_task_ended(tmp_path, caplog):
    path = tmp_path / "run.json"

    def fails():
        yield
        raise ValueError("no")

    def main():
        a = yield NewTask(ticker(), name="killed")
        b = yield NewTask(ticker(), name="cancelled")
        yield NewTask(fails(), name="fails")
        yield
        yield KillTask(a)
        yield CancelTask(b)
        with pytest.raises(pyos.TaskCancelled):
            yield WaitTask(b)

    def ticker():
        yield Sleep(10)

    with caplog.at_level(logging.CRITICAL, logger="pyos"):
        pyos.run(main(), timeline=path, clock=pyos.VirtualClock())
    trace = load_trace(path)
    exits = {e["tid"]: e["name"] for e in trace["traceEvents"] if e.get("cat") == "exit"}
    assert exits == {1: "exited: returned", 2: "exited: killed", 3: "exited: cancelled",
                     4: "exited: raised ValueError"}
    for tid in (2, 3):   # their sleeps end at the kill and the cancel
        [wait] = trace_slices(trace, "wait", tid)
        assert wait["name"] == "sleeping for 10.000s more"
    assert trace_slices(trace, "wait", 2)[0].get("args") is None           # nothing woke it
    woken_by = f"task 1 ({main.__qualname__})"                             # the canceller
    assert trace_slices(trace, "wait", 3)[0]["args"] == {"woken_by": woken_by}


def test_the_ring_keeps_the_newest_events_only(tmp_path):
    """timeline_events=50: 201 steps and an exit leave the last 49 slices and the exit."""
    path = tmp_path / "run.json"
    steps: list[float] = []

    def worker():
        for _ in range(200):
            steps.append(perf_counter())
            yield

    sched = pyos.Scheduler(timeline=path, timeline_events=50)
    sched.new(worker(), name="worker")
    sched.mainloop()
    assert len(sched.timeline.events) == 50
    sched.close()
    trace = load_trace(path)
    runs = trace_slices(trace, "run")
    assert len(runs) == 49
    for t, e in zip(steps[152:], runs, strict=False):   # steps 152..199 (200 records none)
        assert inside(trace, t, e)
    assert not inside(trace, steps[151], runs[0])
    assert [e["name"] for e in trace["traceEvents"] if e["ph"] == "i"] == ["exited: returned"]
    assert trace["otherData"]["full"] is True and trace["otherData"]["max_events"] == 50


def test_recording_changes_nothing_the_tasks_see(tmp_path):
    """The same program, recorded or not: the same order of events, the same results."""
    def program(record):
        def worker(name, n):
            for i in range(n):
                record.append((name, i))
                yield Sleep(0.001 * i) if i % 2 else None
            return name

        def main():
            tids, results = [], []
            for name in "abc":
                tids.append((yield NewTask(worker(name, 4), name=name)))
            for tid in tids:
                results.append((yield WaitTask(tid)))
            return results
        return main()

    plain: list[object] = []
    recorded: list[object] = []
    assert pyos.run(program(plain), clock=pyos.VirtualClock()) == ["a", "b", "c"]
    assert pyos.run(program(recorded), clock=pyos.VirtualClock(),
                    timeline=tmp_path / "run.json") == ["a", "b", "c"]
    assert recorded == plain


def test_ctrl_c_in_a_task_still_leaves_a_timeline_with_every_exit(tmp_path):
    path = tmp_path / "run.json"

    def interrupt():
        yield
        raise KeyboardInterrupt

    sched = pyos.Scheduler(timeline=path)
    sched.new(interrupt(), name="interrupt")
    sched.new(ticker_forever(), name="other")
    with pytest.raises(KeyboardInterrupt):
        sched.mainloop()
    sched.close()
    exits = {e["tid"]: e["name"] for e in load_trace(path)["traceEvents"] if e.get("cat") == "exit"}
    assert exits == {1: "exited: raised KeyboardInterrupt", 2: "exited: killed"}


def ticker_forever():
    while True:
        yield


def test_the_signal_dump_still_finds_the_running_task(tmp_path, capsys):
    """The dump looks for the scheduler's own _run_ready frame: recorded, it is still there."""
    def spinner():
        yield
        os.kill(os.getpid(), signal.SIGUSR1)

    old = signal.getsignal(signal.SIGUSR1)
    sched = pyos.Scheduler(timeline=tmp_path / "run.json")
    try:
        sched.dump_on_signal(signal.SIGUSR1)
        sched.new(spinner(), name="spinner")
        sched.mainloop()
    finally:
        signal.signal(signal.SIGUSR1, old)
        sched.close()
    assert capsys.readouterr().err.splitlines()[2].split()[:4] == ["1", "spinner", "running", "1"]
