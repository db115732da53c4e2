"""Helpers for the tests of child processes (test_process.py, test_commands.py).

The ``mode`` fixture runs a test with exits waited for on a pidfd, and in a worker
thread as where Linux has no pidfds; the rest look at children through /proc.
"""

from __future__ import annotations

import os
import re

import pytest


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


def ps_pid(infos) -> int | None:
    """The pid of the first child a task waits for in ps, or None."""
    pids = states(infos)
    return pids[0] if pids else None
