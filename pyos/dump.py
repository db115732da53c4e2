"""The SIGUSR1 dump: every task, its state and its stack, on stderr, while the program runs.

Two things make it safe to use on a loaded server.  It stays short: tasks that share a
kind of state and a stack (a thousand clients all waiting in the same ``recv``) are shown
once, with a line that counts the others.  And it never stalls the kernel: a pipe that
nobody reads fills up, and a plain write to it would block the whole program inside the
signal handler.  When stderr is a pipe or a socket, the dump is handed to a helper thread
that writes it, and at most ``MAX_PENDING`` bytes wait for it; a dump beyond that is
dropped, and the next one that is written says how many were.  (A terminal or a file
never fills up for long, so there the dump is written at once, as any print would be.)
"""

from __future__ import annotations

import os
import queue
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .debug import TaskInfo, format_ps, task_info

if TYPE_CHECKING:  # pragma: no cover
    from .scheduler import Scheduler

__all__ = ["MAX_PENDING", "SUMMARISE_ABOVE", "dump_on_signal", "format_dump"]

#: Bytes of dumps that may wait for a slow stderr pipe; a dump that does not fit is dropped.
MAX_PENDING = 1 << 20
#: More tasks than this with the same kind of state and the same stack are summarised.
SUMMARISE_ABOVE = 3

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def dump_on_signal(sched: Scheduler, signum: int) -> None:
    """Install a handler that writes the ps table, stacks included, to stderr on signum.

    The handler runs between two bytecodes of the main thread, so the snapshot is
    consistent, and the program carries on afterwards.  A task that hogs the CPU (the
    usual reason to ask) is found in the interrupted kernel frame and shown as running.
    """
    run_code = type(sched)._run_ready.__code__

    def handler(signum: int, frame: Any) -> None:
        try:
            _dump(signum, frame)
        except Exception:  # whatever it raises would land in the frame it interrupted
            pass

    def _dump(signum: int, frame: Any) -> None:
        running, run_time = None, 0.0
        while frame is not None:            # was the signal taken while a task ran?
            if frame.f_code is run_code and "start" in frame.f_locals:
                running = frame.f_locals.get("task")
                run_time = time.perf_counter() - frame.f_locals["start"]
                break
            frame = frame.f_back
        infos = [task_info(t, "running", run_time) if t is running else
                 task_info(t, sched.describe(t)) for t in sched.tasks()]
        header = (f"--- pyos ps: pid {os.getpid()}, {len(infos)} tasks, "
                  f"{signal.Signals(signum).name} at {time.strftime('%H:%M:%S')} ---")
        _write(header + "\n" + format_dump(infos) + "\n")

    signal.signal(signum, handler)


def format_dump(infos: Iterable[TaskInfo]) -> str:
    """The ps table with stacks, tasks alike summarised: "+411 more tasks like task 7"."""
    groups: dict[tuple[str, tuple[Any, ...]], list[TaskInfo]] = {}
    for info in infos:   # alike: the same state but for its numbers, and the same stack
        groups.setdefault((_NUMBER.sub("#", info.state), info.stack), []).append(info)
    shown: list[tuple[TaskInfo, str | None]] = []
    for members in groups.values():
        if len(members) > SUMMARISE_ABOVE:
            first, rest = members[0], members[1:]
            shown.append((first, f"{'':>7}+{len(rest)} more tasks like task {first.tid}, "
                                 f"same state and stack: {_ranges(t.tid for t in rest)}"))
        else:
            shown.extend((info, None) for info in members)
    shown.sort(key=lambda row: row[0].tid)
    lines = [format_ps(())]
    for info, summary in shown:
        lines.append(format_ps([info], stacks=True).split("\n", 1)[1])
        if summary:
            lines.append(summary)
    return "\n".join(lines)


def _ranges(tids: Iterable[int], most: int = 8) -> str:
    """"3-9, 12, 15-20": task ids as ranges, the first `most` of them and a count after."""
    spans: list[list[int]] = []
    for tid in sorted(tids):
        if spans and tid == spans[-1][1] + 1:
            spans[-1][1] = tid
        else:
            spans.append([tid, tid])
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in spans[:most])
    return text + (f", … ({len(spans) - most} ranges more)" if len(spans) > most else "")


def _write(text: str) -> None:
    """Write text to stderr at once, or through a helper thread if stderr can fill up."""
    try:
        fd = sys.stderr.fileno()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):  # replaced by an object without an fd
        fd = -1
    if fd < 0 or not (stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)):
        sys.stderr.write(text)
        sys.stderr.flush()
        return
    key = (fd, st.st_dev, st.st_ino)
    writer = _writers.get(key)
    if writer is None:
        writer = _writers[key] = _Writer(fd)
    writer.submit(text)


class _Writer:
    """A daemon thread that writes dumps to one pipe or socket, blocking only itself.

    The signal handler only queues (``SimpleQueue.put`` is safe in a signal handler);
    each counter has one writer, so they need no lock: ``queued`` is the handler's,
    ``written`` the thread's.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self.queued = self.written = self.dropped = 0
        threading.Thread(target=self._run, name=f"pyos dump to fd {fd}", daemon=True).start()

    def submit(self, text: str) -> None:
        """Queue text, or drop it if too much still waits for the reader."""
        if self.dropped:
            text = (f"--- pyos: {self.dropped} earlier dump(s) dropped: stderr was not "
                    "being read ---\n" + text)
        data = text.encode(errors="replace")
        if self.queued - self.written + len(data) > MAX_PENDING:
            self.dropped += 1
            return
        self.dropped = 0
        self.queued += len(data)
        self.queue.put(data)

    def _run(self) -> None:
        while True:
            data = self.queue.get()
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError:  # the reader is gone (EPIPE) or the fd was closed: let it go
                pass
            self.written += len(data)


_writers: dict[tuple[int, int, int], _Writer] = {}
