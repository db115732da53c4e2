"""pyos.run_workers and ``demos/echo_server.py --workers``, with real processes.

Every server here is a real supervisor with real forked workers on loopback, port 0,
driven by signals and plain blocking clients; which worker served a connection is read
from the pid in the demo's log lines, and which workers exist from /proc.  Every wait is
bounded (helpers.wait_for), and the whole file takes a few seconds.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import round_trip, wait_for

import pyos


def children(pid: int) -> set[int]:
    """The live child processes of pid (zombies not yet reaped count as gone)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(c) for c in text.split() if not gone(int(c))}


def gone(pid: int) -> bool:
    """Has process pid exited?  (A zombie has: only its parent has not reaped it yet.)"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def served_by(server) -> set[int]:
    """The pids that logged a connection (the demo's log lines read "echo[PID]: connect")."""
    return {int(p) for p in re.findall(r"echo\[(\d+)\]: connect", server.stderr())}


def serve_until_both(server, workers: set[int], limit: int = 200) -> set[int]:
    """Round trips on fresh connections until every worker has served one (bounded)."""
    deadline = time.monotonic() + 5
    for _ in range(limit):
        with server.connect() as sock:
            assert round_trip(sock) == b"ping"
        if workers <= served_by(server) or time.monotonic() > deadline:
            break
    wait_for(lambda: workers <= served_by(server), 1.0)  # the last line may lag behind
    return served_by(server)


@pytest.fixture
def workers(start):
    """workers(n) starts the demo with --workers n; returns (server, its workers' pids).

    Workers still alive at teardown (a failed test) are killed too: no strays.
    """
    started = []

    def launch(n: int, *args: str, expect: int | None = None):
        server = start("--workers", str(n), *args)
        started.append(server)
        count = n if expect is None else expect
        assert wait_for(lambda: len(children(server.proc.pid)) == count), server.stderr()
        return server, children(server.proc.pid)

    yield launch
    for server in started:
        for pid in children(server.proc.pid):
            os.kill(pid, signal.SIGKILL)


def script(tmp_path: Path, body: str) -> tuple[subprocess.Popen, Path]:
    """Run a small program that calls run_workers; its stderr goes to a file."""
    path, err = tmp_path / "prog.py", tmp_path / "prog.err"
    path.write_text("import logging, sys\nimport pyos\n"
                    "logging.basicConfig(level=logging.INFO, format='%(process)d %(message)s')\n"
                    + body)
    with open(err, "wb") as f:
        return subprocess.Popen([sys.executable, str(path)], stderr=f), err


def test_listen_reuse_port_lets_two_sockets_share_a_port():
    """reuse_port=True: a second listener on the same port; without it: EADDRINUSE."""
    with pyos.listen(reuse_port=True) as first:
        port = first.getsockname()[1]
        with pyos.listen(port=port, reuse_port=True) as second:
            assert second.getsockname()[1] == port
        with pytest.raises(OSError) as info:
            pyos.listen(port=port)
        assert info.value.errno == errno.EADDRINUSE


def test_two_workers_both_serve(workers):
    """Echoes work, and both worker processes serve clients."""
    server, pids = workers(2)
    assert serve_until_both(server, pids) == pids
    assert server.proc.poll() is None


def test_workers_zero_means_one_per_cpu(workers):
    """--workers 0: as many workers as CPUs this process may use."""
    cpus = len(os.sched_getaffinity(0))
    server, pids = workers(0, expect=cpus)
    assert len(pids) == cpus
    with server.connect() as sock:
        assert round_trip(sock) == b"ping"


@pytest.mark.parametrize(("signum", "death"), [
    (signal.SIGKILL, "was killed by SIGKILL"), (signal.SIGTERM, "exited with status 130")])
def test_killed_worker_is_restarted_and_service_goes_on(workers, signum, death):
    """A worker killed (or told to stop) alone: a new one takes its place, service goes on."""
    server, pids = workers(2)
    victim = min(pids)
    os.kill(victim, signum)
    assert wait_for(lambda: len(children(server.proc.pid) - pids) == 1, 3.0)
    now = children(server.proc.pid)
    assert victim not in now and len(now) == 2
    for _ in range(5):
        with server.connect() as sock:
            assert round_trip(sock) == b"ping"
    assert f"(pid {victim}) {death}" in server.stderr()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_every_worker_and_exits_0(workers, signum):
    """SIGTERM/SIGINT to the supervisor: exit 0 at once, clients see EOF, no orphans.

    Also: the 'listening on' line (read at start) was the only line on stdout.
    """
    server, pids = workers(2)
    clients = [server.connect() for _ in range(4)]
    try:
        assert [round_trip(c) for c in clients] == [b"ping"] * 4
        began = time.monotonic()
        server.proc.send_signal(signum)
        assert server.proc.wait(5) == 0
        assert time.monotonic() - began < 3.0
        assert all(gone(pid) for pid in pids)       # reaped by the supervisor: no orphan
        assert [c.recv(10) for c in clients] == [b""] * 4  # every worker unwound its tasks
        assert "Traceback" not in server.stderr()
        assert server.proc.stdout.read() == b""
    finally:
        for c in clients:
            c.close()


def test_sigusr1_reaches_every_worker(workers):
    """SIGUSR1 to the supervisor: each worker prints its ps table; nobody stops."""
    server, pids = workers(2)
    serve_until_both(server, pids)  # both mains are running: their dumps are installed
    server.proc.send_signal(signal.SIGUSR1)

    def dumped() -> set[int]:
        return {int(p) for p in re.findall(r"--- pyos ps: pid (\d+)", server.stderr())}

    assert wait_for(lambda: dumped() == pids, 3.0), server.stderr()[-2000:]
    assert server.proc.poll() is None and children(server.proc.pid) == pids


@pytest.mark.parametrize("lifeline", ["prctl", "pipe"])
def test_workers_exit_when_the_supervisor_is_killed(tmp_path, lifeline):
    """SIGKILL to the supervisor: its workers notice and exit, by prctl or by the pipe."""
    proc, err = script(tmp_path, (
        "import pyos.workers\n"
        f"if {lifeline == 'pipe'}:\n    pyos.workers._prctl = None\n"
        "def main():\n    logging.getLogger('prog').warning('ready')\n"
        "    yield pyos.Sleep(3600)\n"
        "sys.exit(pyos.run_workers(main, 2))\n"))
    pids: set[int] = set()
    try:   # (killed only once both run main: a loaded machine may take seconds to start them)
        assert wait_for(lambda: err.read_text().count("ready") == 2), err.read_text()
        pids = children(proc.pid)
        assert len(pids) == 2
        proc.kill()
        proc.wait(5)
        assert wait_for(lambda: all(gone(pid) for pid in pids), 10.0), "orphans left behind"
    finally:
        for pid in pids | children(proc.pid):  # orphans are no longer proc's children
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_unwinds_workers_of_a_program_without_handlers(tmp_path):
    """A program that installed no SIGTERM handler: its workers still unwind their tasks."""
    proc, err = script(tmp_path, (
        "def main():\n    logging.getLogger('prog').warning('ready')\n"
        "    try:\n        yield pyos.Sleep(3600)\n"
        "    finally:\n        logging.getLogger('prog').warning('unwound')\n"
        "sys.exit(pyos.run_workers(main, 2))\n"))
    try:
        assert wait_for(lambda: err.read_text().count("ready") == 2), err.read_text()
        proc.terminate()
        assert proc.wait(5) == 0
        assert err.read_text().count("unwound") == 2
    finally:
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sigchld", ["SIG_DFL", "SIG_IGN"])
def test_workers_that_keep_dying_make_the_supervisor_give_up(tmp_path, sigchld):
    """A main that fails at once: restarted with a doubling back-off, then exit status 1.

    Even in a program that ignores SIGCHLD (which would have the kernel reap workers).
    """
    proc, err = script(tmp_path, (
        f"import signal\nsignal.signal(signal.SIGCHLD, signal.{sigchld})\n"
        "def main():\n    raise RuntimeError('broken at birth')\n"
        "sys.exit(pyos.run_workers(main, 1))\n"))
    assert proc.wait(10) == 1
    log = err.read_text()
    assert re.findall(r"restarting in ([\d.]+) s", log) == ["0.1", "0.2", "0.4", "0.8"]
    assert "5 deaths in a row" in log and "giving up" in log
    assert log.count("RuntimeError: broken at birth") == 5


def test_workers_whose_main_returns_are_not_restarted(tmp_path):
    """Every worker's main returns normally: nothing to restart, the supervisor returns 0."""
    proc, err = script(tmp_path, (
        "def main():\n    yield pyos.Sleep(0)\n    return 'done'\n"
        "sys.exit(pyos.run_workers(main, 2))\n"))
    assert proc.wait(10) == 0
    log = err.read_text()
    assert log.count(") finished") == 2 and "every worker has finished" in log
    assert "restarting" not in log


def test_bad_arguments_fail_before_any_fork():
    with pytest.raises(ValueError, match="workers must be 0"):
        pyos.run_workers(lambda: None, -1)
    with pytest.raises(TypeError, match="callable"):
        pyos.run_workers(object())
