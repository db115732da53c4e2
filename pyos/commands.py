"""``result = yield run_process(args)``: subprocess.run for tasks, cancel-safe.

A child is run to completion over ``open_process`` (process.py).  Its input is fed and
its output drained by helper tasks, one per pipe, named after the pipe ("stdout of
process 1234"), because a child that fills one pipe while its parent waits on another
would otherwise hang them both; the caller waits for the exit, then for the helpers.

Whatever ends the call early, the child does not outlive it.  A cancel or a timeout (or
an error) terminates the child, kills it if it has not exited after ``grace`` seconds
(5 by default), reaps it, ends the helpers, and then lets the Cancelled go on.  KillTask
and Ctrl-C unwind without waiting: the child is killed at once, the helpers end with
the caller, and the reaping is left to the kernel's close (process.py).
"""

from __future__ import annotations

import errno
import subprocess
import types
from collections.abc import Generator
from typing import Any

from .errors import Cancelled
from .pipes import PipeStream
from .process import Process, open_process
from .runtime import current_kernel
from .syscalls import NewTask, WaitTask, check_seconds
from .timeouts import ignore_after

__all__ = ["run_process"]

Op = Generator[Any, Any, Any]


@types.coroutine
def run_process(args: Any, *, input: bytes | None = None, capture_output: bool = False,
                check: bool = False, grace: float = 5.0, **popen_kwargs: Any) -> Op:
    """Run a child to completion: ``result = yield run_process(args)``, as subprocess.run.

    Returns a ``subprocess.CompletedProcess`` (stdout and stderr are bytes when piped);
    with ``check=True`` a non-zero exit raises ``subprocess.CalledProcessError``.  If the
    task is cancelled or times out, the child is terminated, killed if it has not exited
    after ``grace`` seconds, and reaped before the Cancelled goes on.
    """
    check_seconds(grace, "run_process() grace")
    if input is not None:
        if popen_kwargs.get("stdin") is not None:
            raise ValueError("stdin and input arguments may not both be used")
        popen_kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        if popen_kwargs.get("stdout") is not None or popen_kwargs.get("stderr") is not None:
            raise ValueError("stdout and stderr arguments may not be used with capture_output")
        popen_kwargs["stdout"] = popen_kwargs["stderr"] = subprocess.PIPE
    proc: Process = yield open_process(args, **popen_kwargs)
    helpers: list[int] = []
    try:
        if proc.stdin is not None:
            helpers.append((yield NewTask(_feed(proc.stdin, input or b""), proc.stdin.name)))
        readers = []
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                readers.append((yield NewTask(_collect(pipe), pipe.name)))
                helpers.append(readers[-1])
        code = yield proc.wait()
        output = []
        for pipe in (proc.stdout, proc.stderr):
            output.append(None if pipe is None else (yield WaitTask(readers.pop(0))))
    except (Exception, Cancelled):             # a cancel, a timeout, an error: clean up
        yield from _stop(proc, grace)
        raise
    except BaseException:                      # KillTask (GeneratorExit), Ctrl-C: no waiting
        proc.kill()
        raise
    finally:                                   # (the stdin feeder, if the child stopped
        _end(helpers)                          # reading; every helper, if interrupted)
    if check and code:
        raise subprocess.CalledProcessError(code, args, *output)
    return subprocess.CompletedProcess(args, code, *output)


def _end(helpers: list[int]) -> None:
    """Kill the helper tasks still running, at once; their pipes close as they unwind.

    At once, through the kernel itself: no system call may be yielded here, as the
    caller may itself be being killed.
    """
    kernel = current_kernel()
    for tid in helpers:
        if kernel is not None:
            kernel.kill(tid)


def _stop(proc: Process, grace: float) -> Op:
    """Terminate proc, kill it if it has not exited within grace seconds, reap it."""
    try:
        proc.terminate()
        if (yield ignore_after(grace, proc.wait())) is None:
            proc.kill()
            yield proc.wait()
    finally:
        if proc.returncode is None:            # interrupted again: kill it, close reaps it
            proc.kill()


def _feed(pipe: PipeStream, data: bytes) -> Op:
    """Write data to the child's stdin, then close it so that the child sees the end."""
    with pipe:
        try:
            yield pipe.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass                               # the child stopped reading: as subprocess.run
        except OSError as exc:
            if exc.errno != errno.EBADF:       # closed as the child was reaped: likewise
                raise


def _collect(pipe: PipeStream) -> Op:
    """Read the child's stdout or stderr to its end."""
    with pipe:
        return (yield pipe.read())

