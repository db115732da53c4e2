"""Helpers every benchmark script shares: resource limits, /proc readers, statistics.

They live in one module so that the client, the servers and the runner measure CPU and
memory the same way (a ratio is only meaningful when both sides are read alike).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"  # loopback only: the benchmarks never talk to another machine
ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards wanted (never above the hard limit).

    Children inherit it, which is how a server that never raises its own limit still gets
    enough descriptors when the runner starts it.  Returns the soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process pid, from /proc/<pid>/stat (utime, stime)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    fields = raw[raw.rindex(b")") + 2 :].split()  # the command name may contain spaces
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def tree_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of pid plus its live descendants (run_workers' workers).

    A parent's own stat counts a child only once it has been reaped, so the workers of a
    supervisor are read one by one; for a single-process server this is proc_cpu(pid).
    """
    user, system = proc_cpu(pid)
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return user, system
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                children = [int(c) for c in f.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            try:
                u, s = tree_cpu(child)
            except FileNotFoundError:  # it exited between the two reads
                continue
            user, system = user + u, system + s
    return user, system


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields[:8]) - idle) / CLK_TCK  # guest time is already counted in user


def self_cpu() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, at microsecond resolution."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime, ru.ru_stime


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A kB field of /proc/<pid>/status, such as VmRSS (now) or VmHWM (peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def median(values: Iterable[float]) -> float:
    """The median, or NaN for no values (a point every pass of which failed)."""
    vals = [v for v in values if v == v]
    return statistics.median(vals) if vals else float("nan")


def peer_versions() -> dict[str, str]:
    """Versions of the peers that are installed; a missing one is simply absent."""
    from importlib import metadata

    out = {}
    for name in ("uvloop", "curio", "trio"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def pyos_version() -> str:
    """The commit of pyos/ and demos/ being measured, "+dirty" with uncommitted edits.

    Read at the start and the end of a run: other people commit while it runs.
    """
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    return head + ("+dirty" if git("status", "--porcelain", "pyos", "demos") else "")


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = _meminfo_kb()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "peers": peer_versions(),
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
        "load_before": [round(x, 2) for x in os.getloadavg()],  # others on the machine
        "pyos_before": pyos_version(),
    }


def _meminfo_kb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
