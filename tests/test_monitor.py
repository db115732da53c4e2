"""The monitor console's commands, through a real Unix socket (and TCP), with the
scheduler running in the test's main thread and the client in a thread of its own
(``converse``).  Every read has a timeout and every loop a bound.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from helpers import line_of
from monitor_helpers import LIMIT, Client, converse, names, sleeper

import pyos
from pyos import GetTid, KillTask, NewTask, ReadWait, Sleep, WaitTask
from pyos.monitor import commands
from pyos.monitor.server import MAX_LINE


@pytest.fixture
def unix_address(tmp_path) -> str:
    return f"unix:{tmp_path}/monitor.sock"


@pytest.fixture
def monitored(unix_address, poller):
    """A scheduler with a console on a Unix socket; closed afterwards."""
    sched = pyos.Scheduler(poller=poller, monitor=unix_address, slow_task=None)
    yield sched
    sched.close()


def waits_for(tids: dict[str, int], other: str):
    yield Sleep(0)
    yield WaitTask(tids[other])


# -- The commands ------------------------------------------------------------------------
def test_ps_where_waits_stats_and_help(monitored, unix_address):
    tids: dict[str, int] = {}

    def talk():
        client = Client(unix_address)
        for _ in range(100):                        # until a and b both wait
            if client.ask("ps").count("waiting for task") == 2:
                break
            time.sleep(0.01)
        answers = {cmd: client.ask(cmd) for cmd in
                   ("ps", f"where {tids['sleeper']}", "waits", "stats", "help",
                    "where 999", "where x", "", "kill")}
        client.close()
        return client.greeting, answers

    def main():
        tids["sleeper"] = yield NewTask(sleeper(), name="sleeper")
        tids["a"] = yield NewTask(waits_for(tids, "b"), name="a")
        tids["b"] = yield NewTask(waits_for(tids, "a"), name="b")

    greeting, answers = converse(monitored, talk, main())
    assert greeting.startswith(f"pyos monitor, pid {os.getpid()}: type help")
    ps = answers["ps"].splitlines()
    assert ps[0] == f"pid {os.getpid()}: 4 tasks"
    assert ps[1].split() == ["TID", "NAME", "STATE", "RUNS", "CPU(ms)", "WHERE"]
    row = next(r for r in ps if " sleeper " in r)
    assert "sleeping for" in row and f"monitor_helpers.py:{line_of(sleeper, 'Sleep')}" in row
    where = answers[f"where {tids['sleeper']}"].splitlines()
    assert where[0].startswith(f"task {tids['sleeper']} (sleeper): sleeping for")
    assert where[1:] == [f'  File "{sleeper.__code__.co_filename}", '
                         f'line {line_of(sleeper, "Sleep")}, in sleeper',
                         "    yield Sleep(seconds)"]
    a, b = tids["a"], tids["b"]
    waits = answers["waits"].splitlines()     # (the keeper may be blocked or ready)
    assert waits[0] in ("4 blocked, 0 ready or running", "3 blocked, 1 ready or running")
    assert any(w.startswith(f"  task {tids['sleeper']} (sleeper): sleeping for ")
               for w in waits)
    assert waits[-3:-1] == [f"  task {a} (a) -> task {b} (b): waiting for task {b} [cycle]",
                            f"  task {b} (b) -> task {a} (a): waiting for task {a} [cycle]"]
    assert waits[-1] == f"cycle: task {a} (a) -> task {b} (b) -> task {a} (a)"
    stats = dict(line.split(None, 1) for line in answers["stats"].replace(
        "loop cycles", "loop_cycles").replace("calls queued", "calls_queued").splitlines())
    assert stats["tasks"].startswith("4 (")
    assert stats["timers"] in ("1", "2") and stats["trace"] == "off"
    assert int(stats["loop_cycles"]) >= int(stats["polls"]) > 0
    assert stats["monitor"] == "1 client(s)" and "threads" in stats
    for form in ("ps", "where TID", "waits", "stats", "trace on|off", "cancel TID",
                 "kill TID", "help", "quit"):
        assert f"\n  {form} " in answers["help"]
    assert answers["where 999"] == "no task 999"
    assert answers["where x"] == "usage: where TID"
    assert answers[""] == ""
    assert answers["kill"] == "usage: kill TID"


def test_cancel_and_kill_run_in_the_kernels_thread(monitored, unix_address, monkeypatch):
    record: list[object] = []
    tids: dict[str, int] = {}

    def cancellable():
        try:
            yield Sleep(30)
        except pyos.Cancelled:
            record.append(("cancelled", threading.current_thread() is threading.main_thread()))

    def killable():
        try:
            yield Sleep(30)
        finally:
            record.append("unwound")

    def talk():
        client = Client(unix_address)
        for _ in range(500):                  # until main has started both
            if names(client.ask("ps")) >= {"c", "k"}:
                break
            time.sleep(0.01)
        answers = [client.ask(f"cancel {tids['c']}"), client.ask(f"kill {tids['k']}"),
                   client.ask(f"kill {tids['k']}"), client.ask("cancel 999"), client.ask("ps")]
        client.close()
        return answers

    def main():
        tids["c"] = yield NewTask(cancellable(), name="c")
        tids["k"] = yield NewTask(killable(), name="k")
        yield Sleep(30)

    threads = []     # where the kernel's cancel and kill ran: never the monitor's thread

    def spy(real):
        def call(tid):
            threads.append(threading.current_thread() is threading.main_thread())
            return real(tid)
        return call

    for method in ("cancel", "kill"):
        monkeypatch.setattr(monitored, method, spy(getattr(monitored, method)))
    tids["main"] = monitored.new(main(), name="main")
    cancel, kill, again, missing, ps = converse(monitored, talk)
    monkeypatch.undo()
    assert threads == [True, True, True]   # cancel, kill, and the keeper's kills at the end
    assert cancel == (f"cancelled task {tids['c']} (c): Cancelled is raised at its "
                      "blocking point")
    assert kill == f"killed task {tids['k']} (k)"
    assert (again, missing) == (f"no task {tids['k']}", "no task 999")
    assert record == [("cancelled", True), "unwound"]
    assert names(ps) == {"main", "keeper"}


def test_trace_on_and_off(monitored, unix_address, caplog):
    caplog.set_level(logging.WARNING, logger="pyos")   # as if the program said -q
    caplog.handler.setLevel(logging.INFO)              # (set_level raised it too)

    def talk():
        client = Client(unix_address)
        on = client.ask("trace on")
        time.sleep(0.1)                       # the keeper's Sleeps are traced meanwhile
        states = [client.ask("stats").split("trace")[1].split()[0]]
        off = client.ask("trace off")
        states.append(client.ask("stats").split("trace")[1].split()[0])
        usage = client.ask("trace maybe")
        client.close()
        return on, off, states, usage

    on, off, states, usage = converse(monitored, talk)
    assert on.startswith("trace on: every system call is logged to logger 'pyos'")
    assert (off, states, usage) == ("trace off", ["on", "off"], "usage: trace on|off")
    assert monitored.trace is False
    assert logging.getLogger("pyos").level == logging.WARNING    # put back by trace off
    assert any("Sleep(0.01) -> sleeping" in r.getMessage() for r in caplog.records)


def test_over_tcp_only_the_reading_commands_are_served(poller):
    sched = pyos.Scheduler(poller=poller, monitor="tcp:127.0.0.1:0", slow_task=None)
    address = str(sched._monitor.address)
    assert address.startswith("tcp:127.0.0.1:") and not address.endswith(":0")

    def talk():
        client = Client(address)
        answers = [client.ask(cmd) for cmd in ("kill 1", "cancel 1", "trace on", "ps", "help")]
        client.close()
        return client.greeting, answers

    try:
        greeting, (kill, cancel, trace, ps, help_) = converse(sched, talk, sleeper())
    finally:
        sched.close()
    assert "TCP: reading commands only" in greeting
    for answer, name in ((kill, "kill"), (cancel, "cancel"), (trace, "trace")):
        assert answer.startswith(f"{name}: not allowed over TCP")
    assert " sleeper " in ps
    assert "kill TID" in help_ and "(not over TCP)" in help_


# -- Clients that misbehave, and several at once -----------------------------------------
def test_garbage_and_overlong_lines_harm_nothing(monitored, unix_address):
    def talk():
        client = Client(unix_address)
        client.sock.sendall(b"\xff\xfe\x00\x1b[A garbage\r\n")
        junk = client.read()
        client.sock.sendall(b"k" * (3 * MAX_LINE))      # no newline yet: refused whole
        too_long = client.read()
        client.sock.sendall(b"ill 1\nps\r\n")           # its end is dropped, then ps runs
        ps = client.read()
        other = Client(unix_address)
        answer = other.ask("stats")
        other.close()
        client.close()
        return junk, too_long, ps, answer

    junk, too_long, ps, stats = converse(monitored, talk, sleeper())
    assert junk.startswith("unknown command ") and junk.endswith(": try help\n")
    assert too_long == f"line too long (over {MAX_LINE} bytes): ignored\n"
    assert ps.startswith(f"pid {os.getpid()}: 2 tasks") and " sleeper " in ps
    assert stats.startswith("tasks        2 ")


def test_a_line_cut_off_by_a_vanishing_client_is_not_run(monitored, unix_address):
    def talk():
        doomed = Client(unix_address)
        doomed.sock.sendall(b"kill 1")                  # and no newline: it vanishes
        doomed.close()
        checker = Client(unix_address)
        for _ in range(200):                           # until the monitor saw it go
            if "monitor      1 client(s)" in checker.ask("stats"):
                break
            time.sleep(0.01)
        ps = checker.ask("ps")
        checker.close()
        return ps

    ps = converse(monitored, talk, sleeper())
    assert "    1  sleeper " in ps


def test_several_clients_at_once(monitored, unix_address):
    def talk():
        clients = [Client(unix_address) for _ in range(5)]
        answers: list[str] = []

        def ask(client: Client) -> None:
            answers.extend(client.ask("ps") for _ in range(20))

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LIMIT)
        count = clients[0].ask("stats")
        for client in clients:
            client.close()
        return answers, count

    answers, stats = converse(monitored, talk, sleeper())
    assert len(answers) == 100 and all(" sleeper " in a for a in answers)
    assert "monitor      5 client(s)" in stats


@pytest.mark.parametrize("after_a_call", [False, True])
def test_it_answers_while_a_task_hogs_the_cpu(monitored, unix_address, monkeypatch,
                                              after_a_call):
    """Hogging from its first step, or after a call that let it go on in the same turn."""
    monkeypatch.setattr(commands, "ACTION_WAIT", 0.2)
    record: list[str] = []
    started = threading.Event()

    def hog():
        if after_a_call:
            yield GetTid()
        started.set()
        for _ in range(20):                           # 1 s without yielding
            time.sleep(0.05)
        yield
        record.append("ran on")                       # never: killed before its next turn

    def talk():
        assert started.wait(LIMIT)
        client = Client(unix_address)
        begin = time.monotonic()
        ps, where, kill = client.ask("ps"), client.ask("where 1"), client.ask("kill 1")
        answered = time.monotonic() - begin
        for _ in range(500):                          # the kill is done once it yields
            if " hog " not in client.ask("ps"):
                break
            time.sleep(0.01)
        after = client.ask("ps")
        client.close()
        return ps, where, kill, answered, after

    monitored.new(hog(), name="hog")
    ps, where, kill, answered, after = converse(monitored, talk)
    assert answered < 0.8                             # well before the hog yields
    assert "    1  hog                      running for " in ps
    assert where.startswith("task 1 (hog): running for ")
    assert where.splitlines()[-2:] == [
        f'  File "{__file__}", line {line_of(hog, "time.sleep")}, in hog',
        "    time.sleep(0.05)"]
    assert kill.startswith("kill 1: queued; the kernel has not come round to it yet: "
                           "task 1 (hog) is running for ")
    assert " hog " not in after and record == []


def test_reading_while_the_kernel_churns_never_fails(monitored, unix_address):
    """Tasks come and go as fast as the kernel can make them while a client reads.

    Before the monitor stopped following ``gi_yieldfrom`` of a running generator, this
    test crashed the interpreter (a segfault) about one run in ten; threads switch every
    10 µs here to make such races likely.  Frames may have no line: no crash either.
    """
    def churn():
        a, b = socket.socketpair()
        try:
            for i in range(100_000):                  # (killed when the client is done)
                tid = yield NewTask(sleeper(0.001 * (i % 3)), name=f"t{i}")
                if i % 7 == 0:
                    yield KillTask(tid)
                if i % 50 == 0:
                    b.send(b"x")
                    yield ReadWait(a)
                    a.recv(1)
        finally:
            a.close()
            b.close()

    def talk():
        client = Client(unix_address)
        answers = [client.ask(cmd) for _ in range(150)
                   for cmd in ("ps", "waits", "stats", "where 1")]
        client.close()
        return answers

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)        # switch threads often: races show up
    try:
        answers = converse(monitored, talk, churn())
    finally:
        sys.setswitchinterval(interval)
    assert len(answers) == 600
    assert not [a for a in answers if " failed: " in a], "a reading command crashed"


@pytest.mark.skipif(shutil.which("nc") is None, reason="no nc on this machine")
def test_nc_speaks_the_protocol(monitored, unix_address):
    path = unix_address.removeprefix("unix:")

    def talk():
        return subprocess.run(["nc", "-U", path], input="ps\nquit\n", capture_output=True,
                              text=True, timeout=LIMIT).stdout

    out = converse(monitored, talk, sleeper())
    assert " sleeper " in out and out.endswith("bye\n")
