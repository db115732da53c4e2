"""Child processes (pyos/process.py, pyos/pipes.py): real ones, on both pollers.

Children are ``cat``, ``true``, ``sleep`` and ``sys.executable -c``.  A test that needs
a child to stay alive keeps ``cat`` waiting on its stdin and ends it by closing that, so
nothing depends on how fast a process starts.  Waiting for exit runs both ways: on a
pidfd, and in a worker thread as where Linux has no pidfds (the ``mode`` fixture).
Zombies are looked for in /proc; descriptors are counted in /proc/self/fd.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading

import pytest
from helpers import run_watched, wait_for

import pyos
from pyos import CancelTask, KillTask, NewTask, Ps, WaitTask

PIPE = subprocess.PIPE
PY = sys.executable


@pytest.fixture(params=["pidfd", "thread"])
def mode(request, monkeypatch) -> str:
    """Wait for exits on a pidfd, or (as without pidfds) in a worker thread."""
    if request.param == "thread":
        monkeypatch.delattr(os, "pidfd_open")
    elif not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd_open here")
    return request.param


def alive(pid: int) -> bool:
    """Is pid still a process of ours, running or a zombie (not yet reaped)?"""
    return os.path.exists(f"/proc/{pid}")


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):   # reaped, before or while reading
        return False


def states(infos, pattern=r"waiting for process (\d+)"):
    """The pids that ps shows tasks waiting for, in task order."""
    return [int(m.group(1)) for i in infos if (m := re.match(pattern, i.state))]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- Pipes and exits ----------------------------------------------------------------------
def test_pipes_are_line_streams_that_close_at_eof(sched) -> None:
    record = []

    def main():
        proc = yield pyos.open_process(["cat"], stdin=PIPE, stdout=PIPE)
        yield proc.stdin.write(b"one\ntwo\nthree\nrest")
        record.append((yield proc.stdout.readline()))
        record.append((yield proc.stdout.readexactly(4)))
        proc.stdin.close()
        record.append((yield proc.stdout.read()))
        record.append((proc.stdout.closed, (yield proc.stdout.readline())))
        record.append((yield proc.wait()))

    run_watched(sched, main())
    assert record == [b"one\n", b"two\n", b"three\nrest", (True, b""), 0]


def test_wait_returns_the_status_and_reaps_the_child(sched, mode) -> None:
    record = []

    def main():
        proc = yield pyos.open_process([PY, "-c", "raise SystemExit(3)"])
        record.append((proc.returncode, (yield proc.wait()), proc.returncode))
        record.append(alive(proc.pid))
        proc.kill()                      # reaped: signals go nowhere, no error
        for stop in ("terminate", "kill", "send_signal"):
            proc = yield pyos.open_process(["cat"], stdin=PIPE)
            getattr(proc, stop)(*([signal.SIGINT] if stop == "send_signal" else []))
            record.append((yield proc.wait()))

    run_watched(sched, main())
    assert record == [(None, 3, 3), False, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGINT]


async def _async_lines(args):
    proc = await pyos.open_process(args, stdout=PIPE)
    lines = [line async for line in proc.stdout]
    return lines, await proc.wait()


def test_async_tasks_read_lines_and_wait(sched) -> None:
    result = []

    async def main():
        result.append(await _async_lines([PY, "-c", "print('a'); print('b')"]))
        done = await pyos.run_process([PY, "-c", "print('c')"], capture_output=True)
        result.append(done.stdout)

    run_watched(sched, main())
    assert result == [([b"a\n", b"b\n"], 0), b"c\n"]


def test_writing_to_a_child_that_is_gone_raises_broken_pipe(sched) -> None:
    record = []

    def main():
        proc = yield pyos.open_process(["true"], stdin=PIPE)
        yield proc.wait()
        try:
            yield proc.stdin.write(b"anyone?")
        except BrokenPipeError:
            record.append("broken pipe")

    run_watched(sched, main())
    assert record == ["broken pipe"]


def test_bad_arguments_fail_in_the_task(sched) -> None:
    record = []

    def main():
        try:
            yield pyos.open_process(["/nonexistent/program"])
        except FileNotFoundError:
            record.append("not found")

    run_watched(sched, main())
    assert record == ["not found"]
    with pytest.raises(ValueError, match="byte streams"):
        pyos.open_process(["cat"], text=True)
    with pytest.raises(ValueError, match="input"):
        next(pyos.run_process(["cat"], input=b"x", stdin=PIPE))


# -- ps, deadlocks, several waiters, cancelling a wait ----------------------------------------
def test_waiters_show_in_ps_are_not_deadlocked_and_all_get_the_status(sched, mode) -> None:
    """Two tasks wait for one child (one watches, one queues); nothing else can wake them."""
    record = []

    def waiter(proc):
        record.append((yield proc.wait()))

    def main():
        proc = yield pyos.open_process(["cat"], stdin=PIPE)
        yield NewTask(waiter(proc))
        yield NewTask(waiter(proc))
        yield
        record.append(states((yield Ps())) == [proc.pid, proc.pid])
        proc.stdin.close()               # cat exits; main exits first, leaving the waiters

    sched.new(main())
    sched.mainloop()                     # would raise Deadlock if those waits were not known
    assert record == [True, 0, 0]


@pytest.mark.parametrize("how", ["cancel", "kill"])
def test_a_watcher_that_leaves_hands_the_watch_on_and_the_child_runs(sched, mode, how) -> None:
    """The first waiter watches the child, the second queues; the first leaves."""
    record = []

    def waiter(proc, label):
        try:
            record.append((label, (yield proc.wait())))
        except pyos.Cancelled:
            record.append((label, "cancelled"))

    def main():
        proc = yield pyos.open_process(["cat"], stdin=PIPE)
        first = yield NewTask(waiter(proc, "first"))
        yield NewTask(waiter(proc, "second"))
        yield
        yield (CancelTask if how == "cancel" else KillTask)(first)
        yield
        yield
        record.append((proc.returncode, states((yield Ps())) == [proc.pid]))
        proc.stdin.close()               # only now can the child exit

    run_watched(sched, main())
    left = [("first", "cancelled")] if how == "cancel" else []
    assert record == [*left, (None, True), ("second", 0)]


# -- run_process ------------------------------------------------------------------------------
def test_run_process_feeds_and_collects_a_megabyte_each_way(sched, mode) -> None:
    data = bytes(range(256)) * 4096
    result = []

    def main():
        result.append((yield pyos.run_process(["cat"], input=data, capture_output=True)))
        result.append((yield pyos.run_process(["true"])))

    run_watched(sched, main())
    big, true = result
    assert big.returncode == 0 and big.stdout == data and big.stderr == b""
    assert (true.args, true.returncode, true.stdout, true.stderr) == (["true"], 0, None, None)


def test_run_process_check_raises_called_process_error_with_the_output(sched) -> None:
    caught = []
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(5)"

    def main():
        try:
            yield pyos.run_process([PY, "-c", script], capture_output=True, check=True)
        except subprocess.CalledProcessError as exc:
            caught.append((exc.returncode, exc.stdout, exc.stderr))

    run_watched(sched, main())
    assert caught == [(5, b"out\n", b"err\n")]


def _ps_pid(infos):
    pids = states(infos)
    return pids[0] if pids else None


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancelling_run_process_terminates_and_reaps_the_child(sched, mode, how) -> None:
    record, pids = [], []

    def runner():
        op = pyos.run_process(["sleep", "30"], capture_output=True)
        try:
            yield pyos.timeout_after(0.25, op) if how == "timeout" else op
        except (pyos.Cancelled, pyos.TaskTimeout) as exc:
            record.append((type(exc).__name__, alive(pids[0])))

    def main():
        tid = yield NewTask(runner())
        for _ in range(1000):            # until the child is up and waited for
            if (pid := _ps_pid((yield Ps()))) is not None:
                break
            yield pyos.Sleep(0.001)
        pids.append(pid)
        if how == "cancel":
            yield CancelTask(tid)
        yield WaitTask(tid)
        record.append([t.name for t in (yield Ps()) if " of process " in t.name])  # helpers gone

    run_watched(sched, main())
    name = "Cancelled" if how == "cancel" else "TaskTimeout"
    assert record == [(name, False), []]


def test_killing_run_process_kills_the_child_at_once_and_close_reaps_it(mode) -> None:
    pids = []

    def main():
        tid = yield NewTask(pyos.run_process(["sleep", "30"], stdout=PIPE))
        for _ in range(1000):
            if (pid := _ps_pid((yield Ps()))) is not None:
                break
            yield pyos.Sleep(0.001)
        pids.append(pid)
        yield KillTask(tid)
        return [t.name for t in (yield Ps())]

    sched = pyos.Scheduler()
    sched.new(main())
    sched.mainloop()
    assert wait_for(lambda: zombie(pids[0]) or not alive(pids[0]))   # SIGKILLed at once
    sched.close()
    assert not alive(pids[0])


def test_the_grace_period_is_five_seconds_on_the_virtual_clock() -> None:
    """A child that ignores SIGTERM is killed 5 (virtual) seconds after its deadline."""
    clock, record = pyos.VirtualClock(), []
    r, w = os.pipe()
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"os.write({w}, b'r'); time.sleep(30)")

    def runner():
        try:
            yield pyos.timeout_after(60, pyos.run_process([PY, "-c", script], pass_fds=[w]))
        except pyos.TaskTimeout:
            record.append(clock.time())

    def ready():                         # busy until the child ignores SIGTERM: no jump yet
        for _ in range(10_000_000):
            if select.select([r], [], [], 0)[0]:
                return
            yield

    sched = pyos.Scheduler(clock=clock)
    try:
        sched.new(runner())
        sched.new(ready())
        sched.mainloop()
    finally:
        sched.close()
        os.close(r)
        os.close(w)
    assert record == [65.0]


def test_a_second_cancel_during_the_grace_period_kills_the_child_at_once(mode) -> None:
    r, w = os.pipe()
    script = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"os.write({w}, b'r'); time.sleep(30)")
    record, pids = [], []

    def runner():
        try:
            yield pyos.run_process([PY, "-c", script], pass_fds=[w], grace=30,
                                   capture_output=True)
        except pyos.Cancelled:
            record.append("cancelled")

    def main():
        tid = yield NewTask(runner())
        yield pyos.ReadWait(r)           # the child ignores SIGTERM now
        pids.append(_ps_pid((yield Ps())))
        yield CancelTask(tid)            # terminate: ignored, so a 30 s grace begins
        for _ in range(3):
            yield
        yield CancelTask(tid)            # enough: the child is killed, the caller goes on
        yield WaitTask(tid)
        record.append([t.name for t in (yield Ps()) if " of process " in t.name])

    sched = pyos.Scheduler()
    try:
        sched.new(main())
        sched.mainloop()
        assert wait_for(lambda: zombie(pids[0]) or not alive(pids[0]))
    finally:
        sched.close()
        os.close(r)
        os.close(w)
    assert record == ["cancelled", []] and not alive(pids[0])


# -- Nothing left behind ------------------------------------------------------------------------
def test_close_reaps_every_child_nobody_waited_for_and_closes_its_pipes(mode, caplog) -> None:
    before, threads = fds(), set(threading.enumerate())
    procs = []

    def main():
        procs.append((yield pyos.open_process(["true"], stdout=PIPE)))
        procs.append((yield pyos.open_process(["cat"], stdin=PIPE, stdout=PIPE)))
        done = yield pyos.open_process(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
        done.stdin.close()
        yield done.wait()                # reaped, its stdout never read: open until close
        procs.append(done)
        for _ in range(1000):            # until `true` is a zombie
            if zombie(procs[0].pid):
                break
            yield pyos.Sleep(0.001)

    sched = pyos.Scheduler()
    sched.new(main())
    sched.mainloop()
    assert zombie(procs[0].pid) and alive(procs[1].pid)
    sched.close()
    assert [alive(p.pid) for p in procs] == [False, False, False]
    assert [p.returncode for p in procs] == [0, -signal.SIGKILL, 0]
    assert fds() == before and set(threading.enumerate()) == threads
    assert caplog.text.count("nobody waited for") == 1   # only the one still running


def test_no_descriptor_leaks_from_waited_processes(sched, mode) -> None:
    before = fds()

    def main():
        for _ in range(5):
            proc = yield pyos.open_process(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
            yield proc.stdin.write(b"x\n")
            proc.stdin.close()
            assert (yield proc.stdout.read()) == b"x\n"
            assert (yield proc.stderr.read()) == b""
            yield proc.wait()
        yield pyos.run_process(["cat"], input=b"y", capture_output=True)

    run_watched(sched, main())
    assert fds() == before
