"""The monitor's commands: each one a line in, a text answer out.

Reading commands (``ps``, ``where``, ``waits``, ``stats``) look at the kernel from the
monitor's thread through snapshot.py.  Commands that change something (``trace``,
``cancel``, ``kill``) never touch the kernel from here: they go through
``call_soon_threadsafe`` and run in the kernel's thread at its next cycle, and the
answer waits a moment for the outcome.  A kernel stuck in a task cannot run them, so
the answer then says they are queued, and who is holding the kernel.  Over TCP only the
reading commands are served: a loopback port is open to every user of the machine.
"""

from __future__ import annotations

import linecache
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..debug import format_ps
from ..scheduler import Scheduler
from . import snapshot

__all__ = ["READ_ONLY", "Context", "execute"]

log = logging.getLogger("pyos")

#: The commands that change nothing: the only ones served over TCP.
READ_ONLY = frozenset({"ps", "where", "waits", "stats", "help", "quit"})
#: How long an answer waits for an action to run in the kernel's thread.
ACTION_WAIT = 2.0

_HELP = [
    ("ps", "every task: id, name, state, runs, CPU time, where it is"),
    ("where TID", "task TID's whole stack, with each line of source"),
    ("waits", "the wait-for graph: who waits for what and for whom, cycles marked"),
    ("stats", "tasks, ready, timers, descriptors, threads, loop cycles, polls"),
    ("trace on|off", "log every system call (logger 'pyos', INFO)"),
    ("cancel TID", "raise Cancelled in task TID at its blocking point"),
    ("kill TID", "unwind task TID at once (its finally blocks run)"),
    ("help", "this list"),
    ("quit", "close this connection (the program goes on)"),
]


class Context:
    """What a command may use: the kernel, the transport, and the monitor's own state."""

    def __init__(self, sched: Scheduler, tcp: bool, clients: Callable[[], int],
                 closing: threading.Event) -> None:
        self.sched = sched
        self.tcp = tcp
        self.clients = clients
        self.closing = closing


def execute(ctx: Context, line: str) -> tuple[str, bool]:
    """Run one command line; return the answer and whether the client asked to quit."""
    words = line.split()
    if not words:
        return "", False
    name, args = words[0].lower(), words[1:]
    command = _COMMANDS.get(name)
    if command is None:
        return f"unknown command {words[0][:40]!r}: try help", False
    if ctx.tcp and name not in READ_ONLY:
        return (f"{name}: not allowed over TCP, where only {', '.join(sorted(READ_ONLY))} "
                "are served; use the Unix socket"), False
    if name == "quit":
        return "bye", True
    try:
        return command(ctx, args), False
    except _Usage as exc:
        return f"usage: {exc}", False
    except Exception as exc:  # a bug here must not end the console, nor the program
        log.exception("monitor command %r failed", line)
        return f"{name} failed: {exc!r}", False


class _Usage(Exception):
    """A command was given the wrong arguments; the message is the right form."""


def _tid(args: list[str], form: str) -> int:
    if len(args) != 1 or not args[0].isdigit():
        raise _Usage(form)
    return int(args[0])


# -- Reading ---------------------------------------------------------------------------
def _ps(ctx: Context, args: list[str]) -> str:
    run = snapshot.running(ctx.sched)
    rows = [snapshot.task_row(ctx.sched, t, run) for t in snapshot.tasks(ctx.sched)]
    header = f"pid {os.getpid()}: {len(rows)} tasks"
    return header + "\n" + format_ps(rows)


def _where(ctx: Context, args: list[str]) -> str:
    tid = _tid(args, "where TID")
    task = ctx.sched._tasks.get(tid)
    if task is None:
        return f"no task {tid}"
    run = snapshot.running(ctx.sched)
    row = snapshot.task_row(ctx.sched, task, run)
    lines = [f"task {tid} ({row.name}): {row.state}"]
    for filename, lineno, func in row.stack:
        lines.append(f'  File "{filename}", line {lineno}, in {func}')
        # (a frame read between two instructions of another thread may have no line)
        source = linecache.getline(filename, lineno).strip() if lineno else ""
        if source:
            lines.append(f"    {source}")
    if not row.stack:
        lines.append("  (no frames: it has not started, or is being unwound)")
    return "\n".join(lines)


def _waits(ctx: Context, args: list[str]) -> str:
    graph = snapshot.wait_graph(ctx.sched)
    in_cycle = {task for cycle in graph.cycles for task in cycle}

    def label(tid: int) -> str:
        name = graph.names.get(tid)
        return f"task {tid} ({name})" if name is not None else f"task {tid} (exited)"

    lines = [f"{len(graph.blocked)} blocked, {graph.others} ready or running"]
    for task, what, blocker, external in graph.blocked:
        edge = f" -> {label(blocker)}" if blocker is not None else ""
        marks = (" [cycle]" if task in in_cycle else "") + (" [external]" if external else "")
        lines.append(f"  {label(task.tid)}{edge}: {what}{marks}")
    for cycle in graph.cycles:
        lines.append("cycle: " + " -> ".join(label(t.tid) for t in cycle + cycle[:1]))
    return "\n".join(lines)


def _stats(ctx: Context, args: list[str]) -> str:
    sched = ctx.sched
    live = snapshot.tasks(sched)
    waiting = sum(1 for t in live if t.wait is not None)
    poller = sched._poller
    readers, writers = len(poller.readers), len(poller.writers)
    rows = [
        ("tasks", f"{len(live)} ({len(live) - waiting} ready or running, {waiting} blocked)"),
        ("ready", f"{len(sched._ready)} in the ready queue"),
        ("timers", f"{len(sched._timers)}"),
        ("descriptors", f"{readers + writers} waited on ({readers} read, {writers} write)"),
        ("threads", f"{threading.active_count()} in the process"),
        ("loop cycles", f"{sched.cycles}"),
        ("polls", f"{sched.polls}"),
        ("calls queued", f"{len(sched._wakeup.calls)} from other threads"),
        ("trace", "on" if sched.trace else "off"),
        ("monitor", f"{ctx.clients()} client(s)"),
    ]
    return "\n".join(f"{name:<12} {value}" for name, value in rows)


def _help(ctx: Context, args: list[str]) -> str:
    lines = []
    for form, text in _HELP:
        barred = ctx.tcp and form.split()[0] not in READ_ONLY
        lines.append(f"  {form:<14} {text}" + ("  (not over TCP)" if barred else ""))
    return "commands:\n" + "\n".join(lines)


# -- Acting: in the kernel's thread ----------------------------------------------------
def _act(ctx: Context, what: str, fn: Callable[[], str]) -> str:
    """Run fn in the kernel's thread at its next cycle; its answer, or why there is none."""
    done = threading.Event()
    result: list[str] = []

    def in_kernel() -> None:
        try:
            result.append(fn())
        except Exception as exc:
            result.append(f"{what} failed: {exc!r}")
        finally:
            done.set()

    try:
        ctx.sched.call_soon_threadsafe(in_kernel)
    except RuntimeError:
        return f"{what}: the kernel has stopped"
    deadline = time.monotonic() + ACTION_WAIT
    while not done.wait(0.05):
        if ctx.closing.is_set() or time.monotonic() > deadline:
            run = snapshot.running(ctx.sched)
            busy = "" if run is None else f": task {run.task.tid} ({run.task.name}) is " + (
                "running" if run.seconds is None else f"running for {run.seconds:.1f}s")
            return f"{what}: queued; the kernel has not come round to it yet{busy}"
    return result[0]


def _trace(ctx: Context, args: list[str]) -> str:
    if len(args) != 1 or args[0].lower() not in ("on", "off"):
        raise _Usage("trace on|off")
    on = args[0].lower() == "on"
    return _act(ctx, f"trace {args[0].lower()}", lambda: _set_trace(ctx.sched, on))


_trace_logging: dict[str, Any] = {}   # what `trace on` changed in logging, for `trace off`


def _set_trace(sched: Scheduler, on: bool) -> str:
    """Turn the trace on or off; make sure its INFO lines reach stderr while it is on."""
    pyos_log = logging.getLogger("pyos")
    sched.trace = on
    if on and not _trace_logging:
        if not pyos_log.isEnabledFor(logging.INFO):
            _trace_logging["level"] = pyos_log.level
            pyos_log.setLevel(logging.INFO)
        if not pyos_log.hasHandlers():     # only logging's last resort: WARNING and up
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            pyos_log.addHandler(handler)
            _trace_logging["handler"] = handler
    elif not on:
        if "level" in _trace_logging:
            pyos_log.setLevel(_trace_logging.pop("level"))
        if "handler" in _trace_logging:
            pyos_log.removeHandler(_trace_logging.pop("handler"))
    return ("trace on: every system call is logged to logger 'pyos' at INFO "
            "(the program's stderr unless its logging says otherwise)" if on else "trace off")


def _cancel(ctx: Context, args: list[str]) -> str:
    tid = _tid(args, "cancel TID")
    return _act(ctx, f"cancel {tid}", lambda: _on_task(ctx.sched, tid, "cancel"))


def _kill(ctx: Context, args: list[str]) -> str:
    tid = _tid(args, "kill TID")
    return _act(ctx, f"kill {tid}", lambda: _on_task(ctx.sched, tid, "kill"))


def _on_task(sched: Scheduler, tid: int, how: str) -> str:
    """In the kernel's thread: cancel or kill task tid, and say what came of it."""
    task = sched._tasks.get(tid)
    if task is None:
        return f"no task {tid}"
    if how == "cancel":
        sched.cancel(tid)
        return f"cancelled task {tid} ({task.name}): Cancelled is raised at its blocking point"
    sched.kill(tid)
    return f"killed task {tid} ({task.name})"


_COMMANDS: dict[str, Callable[[Context, list[str]], str]] = {
    "ps": _ps, "where": _where, "waits": _waits, "stats": _stats, "help": _help,
    "quit": _help, "trace": _trace, "cancel": _cancel, "kill": _kill,
}
