"""Child processes: ``proc = yield open_process(args)``, and waiting for them to exit.

``open_process`` starts a child with ``subprocess.Popen`` (every Popen argument works)
and returns a ``Process`` whose stdin, stdout and stderr, where given as
``subprocess.PIPE``, are line streams (pipes.py).  ``run_process``, subprocess.run for
tasks, is built on it in commands.py.

Waiting for exit blocks nothing: where Linux has pidfds, ``wait()`` is a ReadWait on
the child's pidfd (readable once it exits), elsewhere a worker thread blocks in waitpid;
ps shows either as "waiting for process 1234".  One task watches a child at a time (a
descriptor has one reader): others in ``wait()`` queue, and take over if it leaves.

No zombies: a scheduler keeps its children until each is reaped and its pipes closed,
and at ``sched.close()`` kills any still running (nobody can wait for it any more),
reaps them all and closes every pipe.  A pipe closes itself at end of stream, and stdin
when the child is reaped, as nothing reads it then.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import types
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any
from weakref import WeakKeyDictionary

from .pipes import PipeStream
from .syscalls import ReadWait, SystemCall
from .threads import _pool
from .waits import WaitQueue

__all__ = ["Process", "open_process"]

log = logging.getLogger("pyos")

Op = Generator[Any, Any, Any]


class _ProcessWait:
    """What every wait for a child's exit says in ps."""

    __slots__ = ()
    pid: int
    external = True    # the child's exit ends it: the task is not deadlocked

    def describe(self, now: float) -> str:
        return f"waiting for process {self.pid}"


class _ExitWait(_ProcessWait, ReadWait):
    """The task watching the child's pidfd, which becomes readable when it exits."""

    def __init__(self, pidfd: int, pid: int) -> None:
        super().__init__(pidfd)
        self.pid = pid


class _ExitQueue(_ProcessWait, WaitQueue):
    """The other tasks in ``wait()``: while one watches the pidfd, or a worker waitpid."""

    __slots__ = ("pid",)

    def __init__(self, pid: int) -> None:
        super().__init__(f"process {pid}")
        self.pid = pid


class Process:
    """A running (or finished) child process; see the module docstring."""

    def __init__(self, popen: subprocess.Popen[bytes], sched: Any) -> None:
        self._popen = popen
        self._sched = sched
        self._children = _children_of(sched)
        self.pid = popen.pid
        self.args = popen.args
        self.stdin, self.stdout, self.stderr = (
            None if pipe is None else PipeStream(pipe, f"{what} of process {self.pid}",
                                                 self._pipe_closed)
            for what, pipe in (("stdin", popen.stdin), ("stdout", popen.stdout),
                               ("stderr", popen.stderr)))
        popen.stdin = popen.stdout = popen.stderr = None   # ours now, not Popen's
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):   # not Linux, or Linux before 5.3
            self._pidfd = -1
        self._watching = False              # a task watches the pidfd for the exit
        self._reaper: Future[Any] | None = None   # or, without a pidfd, a worker waits
        self._exited = _ExitQueue(self.pid)
        self._children.add(self)

    def __repr__(self) -> str:
        state = "running" if self.returncode is None else f"returncode={self.returncode}"
        return f"<pyos.Process {self.pid} {state}>"

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else None."""
        return self._popen.returncode

    @types.coroutine
    def wait(self) -> Op:
        """Wait for the child to exit, reap it, and return its returncode.

        Cancelling a wait leaves the child running (``run_process`` is what stops it).
        """
        while self.returncode is None:
            if self._pidfd < 0:
                self._reap_in_thread()
                yield self._exited.park()      # until the worker has reaped it
            elif self._watching:
                yield self._exited.park()      # someone else watches: their news is ours
            else:
                self._watching = True
                try:
                    yield _ExitWait(self._pidfd, self.pid)
                    self._popen.poll()         # it has exited: reap it, without blocking
                finally:
                    self._watching = False
                    self._exited.wake_all()    # reaped, or a watcher is needed: they look
        self._reaped()
        return self.returncode

    def _reap_in_thread(self) -> None:
        """Without a pidfd: one worker per child blocks in waitpid, whoever waits or leaves."""
        if self._reaper is not None:
            return
        sched = self._sched

        def reaped(_future: Future[Any]) -> None:   # in the worker
            try:
                sched.call_soon_threadsafe(self._exited.wake_all)
            except RuntimeError:
                pass                               # the scheduler has closed meanwhile

        self._reaper = _pool(sched).run(self._popen.wait)
        self._reaper.add_done_callback(reaped)

    def send_signal(self, sig: int) -> None:
        """Send signal sig to the child; nothing once it has been reaped."""
        if self.returncode is not None:
            return                             # its pid may be another process's now
        try:
            if self._pidfd >= 0:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass                               # it has exited already

    def terminate(self) -> None:
        """Ask the child to stop: SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """Stop the child now: SIGKILL."""
        self.send_signal(signal.SIGKILL)

    # -- Clean-up ---------------------------------------------------------------------------
    def _reaped(self) -> None:
        """The child is gone: its pidfd and stdin go too; forget it once nothing is open."""
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        if self.stdin is not None:
            self.stdin.close(broken=True)      # nobody reads it now: writes get EPIPE
        self._pipe_closed(None)

    def _pipe_closed(self, _pipe: PipeStream | None) -> None:
        if self.returncode is not None and all(
                p is None or p.closed for p in (self.stdin, self.stdout, self.stderr)):
            self._children.discard(self)

    def _running(self) -> bool:
        """Has the child not exited yet?  Asked without reaping it (a worker may be)."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False                       # a worker has just reaped it

    def _reap_at_close(self) -> None:
        """The kernel is stopping: kill the child if it still runs, reap it, close it all."""
        if self.returncode is None and self._running():
            log.warning("closing: killing %r (%s), which nobody waited for", self, self.args)
            self.kill()
        try:
            self._popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.error("closing: %r did not die of SIGKILL within 5 s: left unreaped", self)
        for pipe in (self.stdout, self.stderr):
            if pipe is not None:
                pipe.close()
        self._reaped()


_children: WeakKeyDictionary[Any, set[Process]] = WeakKeyDictionary()


def _children_of(sched: Any) -> set[Process]:
    """sched's children not yet reaped and closed; at its close, each is seen to."""
    children = _children.get(sched)
    if children is None:
        # The thread pool first: at_close runs latest first, so the children are killed
        # and reaped before the pool joins a worker that may be blocked in waitpid.
        _pool(sched)
        children = _children[sched] = set()
        sched.at_close(functools.partial(_reap_all, children))
    return children


def _reap_all(children: set[Process]) -> None:
    for proc in list(children):   # (each one leaves the set as it is closed)
        proc._reap_at_close()


class _Spawn(SystemCall):
    """``open_process``'s system call: start the child in the kernel's thread."""

    def __init__(self, args: Any, popen_kwargs: dict[str, Any]) -> None:
        self.args = args
        self.popen_kwargs = popen_kwargs

    def __repr__(self) -> str:
        return f"open_process({self.args!r})"

    def handle(self) -> None:
        _children_of(self.sched)   # (before the child: see there)
        self.task.sendval = Process(subprocess.Popen(self.args, **self.popen_kwargs), self.sched)
        self.sched.schedule(self.task)


def open_process(args: Any, *, stdin: Any = None, stdout: Any = None, stderr: Any = None,
                 **popen_kwargs: Any) -> SystemCall:
    """Start a child process: ``proc = yield open_process(["ls", "-l"], stdout=PIPE)``.

    Each of stdin, stdout and stderr given as ``subprocess.PIPE`` becomes a line stream
    on the Process; the other values and every keyword mean what they mean to Popen,
    except that pipes are bytes (no ``text`` or ``encoding``).
    """
    if any(popen_kwargs.get(k) for k in ("text", "universal_newlines", "encoding", "errors")):
        raise ValueError("open_process() pipes are byte streams: decode what you read")
    popen_kwargs.update(stdin=stdin, stdout=stdout, stderr=stderr, bufsize=0)
    return _Spawn(args, popen_kwargs)
