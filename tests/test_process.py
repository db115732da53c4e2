"""Child processes (pyos/process.py): open_process, pipes, wait, reaping, on both pollers.

Children are ``cat``, ``true``, ``sleep`` and ``sys.executable -c``.  A test that needs
a child to stay alive keeps ``cat`` waiting on its stdin and ends it by closing that, so
nothing depends on how fast a process starts.  Waiting for exit runs both ways: on a
pidfd, and in a worker thread as where Linux has no pidfds (the ``mode`` fixture).
Zombies are looked for in /proc; descriptors are counted in /proc/self/fd.
run_process has its own file, test_commands.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
from children import alive, fds, mode, states, zombie  # noqa: F401 (mode: a fixture, used by name)
from helpers import run_watched

import pyos
from pyos import CancelTask, KillTask, NewTask, Ps

PIPE = subprocess.PIPE
PY = sys.executable


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


@pytest.mark.usefixtures("mode")
def test_wait_returns_the_status_and_reaps_the_child(sched) -> None:
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
@pytest.mark.usefixtures("mode")
def test_waiters_show_in_ps_are_not_deadlocked_and_all_get_the_status(sched) -> None:
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


@pytest.mark.usefixtures("mode")
@pytest.mark.parametrize("how", ["cancel", "kill"])
def test_a_watcher_that_leaves_hands_the_watch_on_and_the_child_runs(sched, how) -> None:
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


# -- Nothing left behind ------------------------------------------------------------------------
@pytest.mark.usefixtures("mode")
def test_close_reaps_every_child_nobody_waited_for_and_closes_its_pipes(caplog) -> None:
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


@pytest.mark.usefixtures("mode")
def test_no_descriptor_leaks_from_waited_processes(sched) -> None:
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
