"""Many cores: a supervisor process that runs one pyos kernel per worker process.

A pyos kernel is one thread on one core.  ``run_workers(main, workers=N)`` forks N
workers that each run ``pyos.run(main())`` on a kernel of their own, restarts those that
die, and stops them all when the supervisor is told to stop::

    listener = pyos.listen("127.0.0.1", 8000, reuse_port=True)  # bind first: port 0 works
    log.warning("listening on %s", listener.getsockname())
    sys.exit(pyos.run_workers(lambda: pyos.serve(listener, handler), workers=0))

The caller binds before calling, so a bad address fails at once, in the caller's
process, and port 0 is resolved once for every worker.

Why the workers share the caller's one listening socket rather than each opening its
own SO_REUSEPORT socket on the port: both were measured (2 workers, 2-core machine
shared with other work, interleaved 2 s windows, Nov 2026).  Echo round trips over 100
connections were equal within the noise (medians of two runs: shared 117k and 95k/s,
per-worker 83k and 104k/s; single windows 53-127k/s either way: the client and the
machine's other load set the pace, see benchmarks/), and connections were spread
evenly either way (700 connections: 313/387 shared, 342/358 per-worker).  New
connections per second (4 clients doing connect, echo, close) favoured sharing:
11.5-12.3k/s against 8.0-10.1k/s, because an idle worker takes the next connection,
where the port's hash may hand it to a busy one.  Sharing is also the robust choice: a
worker that dies leaves nothing stranded in a queue of its own, its replacement inherits
the same socket, and ``main`` simply closes over the listener.  The cost is that every
idle worker wakes for each new connection and all but one find nothing to accept.

The supervisor is plain blocking code, not a pyos task.  It blocks the signals it serves
(SIGCHLD, SIGINT, SIGTERM, SIGUSR1) and takes them one at a time with
``signal.sigtimedwait``, so there is no handler to race with and no self-pipe; workers
get the caller's signal mask back right after the fork.

* A worker that dies (an exception, a signal, SIGINT or SIGTERM to it alone: status
  130 after unwinding) is started again after a back-off that doubles with each death
  within ``quick`` seconds of starting; after ``give_up`` such deaths in a row the
  supervisor stops the others and returns 1.  A worker whose main returns has finished
  and is not restarted.
* SIGINT or SIGTERM: every worker gets SIGTERM (which, unless the program handles it,
  raises KeyboardInterrupt in the worker, so its kernel unwinds every task and closes
  every socket), then SIGKILL after ``grace`` seconds; a second signal kills at once.
  run_workers then returns 0.
* SIGUSR1 is passed on to every worker (``sched.dump_on_signal`` prints its tasks).
* A worker whose supervisor vanishes (SIGKILL, a crash) gets SIGTERM too: through
  ``prctl(PR_SET_PDEATHSIG)`` on Linux, elsewhere through a pipe that reads EOF.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["run_workers"]

log = logging.getLogger("pyos")

STOP = frozenset({signal.SIGINT, signal.SIGTERM})
SERVED = frozenset({*STOP, signal.SIGCHLD, signal.SIGUSR1})
PR_SET_PDEATHSIG = 1


def _find_prctl() -> Any:
    """libc's prctl, or None where there is none (not Linux)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


@dataclass
class _Slot:
    """One worker's place: the process in it now and how its recent ones ended."""

    index: int
    pid: int = 0
    started: float = 0.0
    quick_deaths: int = 0             # deaths in a row, each within `quick` s of starting
    restart_at: float | None = None   # when to start it again (monotonic), if waiting


def run_workers(main: Callable[[], Any], workers: int = 0, *, grace: float = 5.0,
                backoff: float = 0.1, max_backoff: float = 5.0, quick: float = 5.0,
                give_up: int = 5, **options: Any) -> int:
    """Run ``pyos.run(main(), **options)`` in each of workers processes; return 0 or 1.

    workers=0 means one per CPU this process may run on.  Returns 0 once stopped by
    SIGINT or SIGTERM (or when every worker's main has returned), 1 after giving up on
    workers that keep dying; the caller passes it to ``sys.exit``.  Call it from the
    main thread of a process with no other threads: it forks.
    """
    if not callable(main):
        raise TypeError(f"main must be a callable that returns a task, not {main!r}")
    if workers < 0:
        raise ValueError(f"workers must be 0 (one per CPU) or more, not {workers}")
    count = workers or len(os.sched_getaffinity(0))
    supervisor = _Supervisor(main, options, grace, backoff, max_backoff, quick, give_up)
    # SIG_IGN would make the kernel reap workers itself, leaving waitpid nothing to see.
    supervisor.old_chld = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, SERVED)
    supervisor.old_mask = old_mask
    try:
        return supervisor.run(count)
    finally:
        supervisor.stop()
        while signal.sigtimedwait(SERVED, 0):   # served already: don't deliver them late
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.signal(signal.SIGCHLD, supervisor.old_chld)
        for fd in supervisor.lifeline or ():
            os.close(fd)


class _Supervisor:
    """The supervisor's state: the slots, the policy and the signal loop."""

    def __init__(self, main: Callable[[], Any], options: dict[str, Any], grace: float,
                 backoff: float, max_backoff: float, quick: float, give_up: int) -> None:
        self.main, self.options, self.grace = main, options, grace
        self.backoff, self.max_backoff, self.quick, self.give_up = (
            backoff, max_backoff, quick, give_up)
        self.slots: list[_Slot] = []
        self.pid = os.getpid()
        self.old_mask: set[int] = set()
        self.old_chld: Any = signal.SIG_DFL
        # Without prctl, workers learn that the supervisor is gone from this pipe's EOF.
        self.lifeline = None if _prctl is not None else os.pipe()

    def run(self, count: int) -> int:
        """Start count workers, then serve signals until told to stop or giving up."""
        log.info("supervisor %d: starting %d workers", self.pid, count)
        self.slots = [_Slot(i) for i in range(count)]
        for slot in self.slots:
            self.spawn(slot)
        while any(s.pid or s.restart_at is not None for s in self.slots):
            now = time.monotonic()
            due = [s.restart_at for s in self.slots if s.restart_at is not None]
            info = signal.sigtimedwait(SERVED, max(0.0, min(due, default=now + 1.0) - now))
            if info is not None and info.si_signo in STOP:
                log.info("supervisor %d: %s, stopping the workers",
                         self.pid, signal.Signals(info.si_signo).name)
                return 0
            if info is not None and info.si_signo == signal.SIGUSR1:
                self.signal_all(signal.SIGUSR1)
            if not self.reap():
                return 1
            now = time.monotonic()
            for slot in self.slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self.spawn(slot)
        log.info("supervisor %d: every worker has finished", self.pid)
        return 0

    def reap(self) -> bool:
        """Collect the workers that exited and plan their restarts; False to give up."""
        for slot in self.slots:
            pid, status = os.waitpid(slot.pid, os.WNOHANG) if slot.pid else (0, 0)
            if not pid:
                continue
            slot.pid, uptime = 0, time.monotonic() - slot.started
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                log.info("worker %d (pid %d) finished", slot.index, pid)
                continue
            how = (f"was killed by {signal.Signals(-code).name}" if code < 0
                   else f"exited with status {code}")
            slot.quick_deaths = slot.quick_deaths + 1 if uptime < self.quick else 0
            if slot.quick_deaths >= self.give_up:
                log.error("worker %d (pid %d) %s: %d deaths in a row within %g s of "
                          "starting, giving up", slot.index, pid, how, slot.quick_deaths,
                          self.quick)
                return False
            delay = min(self.backoff * 2 ** max(slot.quick_deaths - 1, 0), self.max_backoff)
            log.warning("worker %d (pid %d) %s after %.1f s: restarting in %.1f s",
                        slot.index, pid, how, uptime, delay)
            slot.restart_at = time.monotonic() + delay
        return True

    def spawn(self, slot: _Slot) -> None:
        """Fork a worker into slot; the child never returns from here."""
        slot.restart_at = None
        for stream in (sys.stdout, sys.stderr):  # or the child would print it again
            stream.flush()
        pid = os.fork()
        if pid == 0:
            self.child(slot.index)
        slot.pid, slot.started = pid, time.monotonic()
        log.info("worker %d started: pid %d", slot.index, pid)

    def child(self, index: int) -> None:
        """In the worker: run main on a fresh kernel, then leave without unwinding."""
        code = 1
        try:
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # before unblocking it
                signal.signal(signal.SIGTERM, signal.default_int_handler)  # unwind, cleanly
            signal.signal(signal.SIGCHLD, self.old_chld)
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old_mask)
            self.follow_supervisor()
            from . import run  # late: the package has finished importing by now
            run(self.main(), **self.options)
            code = 0
        except KeyboardInterrupt:  # SIGINT or SIGTERM: every task has been unwound
            code = 128 + signal.SIGINT  # as a shell reports Ctrl-C: restart unless stopping
            log.info("worker %d (pid %d) stopped", index, os.getpid())
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            log.exception("worker %d (pid %d) failed", index, os.getpid())
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)  # never run the supervisor's own finally blocks or atexit

    def follow_supervisor(self) -> None:
        """Make this worker get SIGTERM when the supervisor is gone, however it went."""
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        elif self.lifeline is not None:
            read_end, write_end = self.lifeline
            os.close(write_end)

            def watch() -> None:
                while os.read(read_end, 1):
                    pass
                os.kill(os.getpid(), signal.SIGTERM)

            threading.Thread(target=watch, name="pyos-lifeline", daemon=True).start()
        if os.getppid() != self.pid:  # gone before the line above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    def signal_all(self, signum: int) -> None:
        for slot in self.slots:
            if slot.pid:
                try:
                    os.kill(slot.pid, signum)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        """SIGTERM to every worker, SIGKILL to those still there after grace; reap all."""
        live = [s for s in self.slots if s.pid]
        if not live:
            return
        self.signal_all(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(s.pid for s in self.slots):
            left = deadline - time.monotonic()
            info = signal.sigtimedwait(SERVED, max(0.0, min(left, 0.5))) if left > 0 else None
            if left <= 0 or (info is not None and info.si_signo in STOP):
                log.warning("supervisor %d: killing %d workers", self.pid,
                            sum(1 for s in self.slots if s.pid))
                self.signal_all(signal.SIGKILL)
                for slot in self.slots:
                    if slot.pid:
                        os.waitpid(slot.pid, 0)
                        slot.pid = 0
                break
            for slot in self.slots:
                if slot.pid and os.waitpid(slot.pid, os.WNOHANG)[0]:
                    slot.pid = 0
        log.info("supervisor %d: every worker has stopped", self.pid)
