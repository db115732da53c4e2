"""Echo benchmarks: start every server once, then measure them interleaved, pass by pass.

Why interleaved: on a shared 2-core machine the speed drifts from minute to minute.
Measuring pass 1 of every server at a point, then pass 2 of every server, ..., and
taking each server's median, keeps the ratios between servers honest even when the
absolute numbers wander.  Each server is its own process; each measurement is a fresh
client process (benchmarks/client.py), so no state carries over between measurements.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from common import BENCH, ROOT, median, proc_status_kb

PY = sys.executable
SERVER_DIR = BENCH / "servers"

#: name -> (command line, module it needs or None).  pyos is the demo, exactly as shipped.
SERVERS: dict[str, tuple[list[str], str | None]] = {
    "pyos": ([str(ROOT / "demos" / "echo_server.py"), "-q"], None),
    "asyncio-streams": ([str(SERVER_DIR / "asyncio_server.py"), "--api", "streams"], None),
    "asyncio-protocol": ([str(SERVER_DIR / "asyncio_server.py"), "--api", "protocol"], None),
    "uvloop-protocol": (
        [str(SERVER_DIR / "asyncio_server.py"), "--api", "protocol", "--loop", "uvloop"],
        "uvloop"),
    "curio": ([str(SERVER_DIR / "curio_server.py")], "curio"),
    "trio": ([str(SERVER_DIR / "trio_server.py")], "trio"),
    "epoll-callbacks": ([str(SERVER_DIR / "epoll_server.py")], None),
    "generator-floor": ([str(SERVER_DIR / "generator_floor.py")], None),
    # Every recv (read) under a 60 s deadline that never fires: what a timeout costs.
    "pyos-timeout": ([str(SERVER_DIR / "pyos_timeout_server.py"), "--timeout", "60"], None),
    "asyncio-timeout": ([str(SERVER_DIR / "asyncio_server.py"), "--api", "streams",
                         "--timeout", "60"], None),
    # The same demo over pyos.run_workers: a supervisor and N worker processes.
    **{f"pyos-workers-{n}": ([str(ROOT / "demos" / "echo_server.py"), "-q", "--workers",
                              str(n)], None) for n in (1, 2, 4)},
}
#: Servers left free to use every core: pinning them to one would defeat their purpose.
UNPINNED = {"pyos-workers-1", "pyos-workers-2", "pyos-workers-4"}
#: Servers measured with 100-byte messages only: a timeout costs the same per recv at any
#: size, so small messages show it best, and a full run stays as long as it was.
SMALL_ONLY = {"pyos-timeout", "asyncio-timeout"}
CLIENT_BOUND = 0.8  # client CPU / wall above this: the client, not the server, is the limit
NOISY = 0.25        # other processes used more than this share of a core: measure again
RETRIES = 1         # at once; later make-up rounds cover what is still short
MIN_CLEAN = 3       # clean windows a point needs before noisy ones are left out
# Server and client each get a core of their own when there are two: the run-to-run
# spread falls from about 15% to a few percent (no migrations, no core sharing).
_CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU, CLIENT_CPU = (_CPUS[-1], _CPUS[0]) if len(_CPUS) >= 2 else (None, None)


@dataclass
class Server:
    """One running echo server process, or the reason it could not run."""

    name: str
    proc: subprocess.Popen[str] | None = None
    stderr: Any = None  # a temporary file: a pipe nobody reads could fill and stall it
    port: int = 0
    skipped: str = ""
    deaths: list[str] = field(default_factory=list)

    def start(self) -> None:
        argv, needs = SERVERS[self.name]
        if needs and importlib.util.find_spec(needs) is None:
            self.skipped = f"{needs} is not installed"
            return
        self.stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen([PY, *argv, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, cwd=ROOT)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening on" not in line:
            self.proc.kill()
            self.proc.wait()
            self.skipped = f"did not start: {self.last_error() or line.strip()!r}"
            self.proc = None
            return
        self.port = int(line.rsplit(":", 1)[1])
        if SERVER_CPU is not None and self.name not in UNPINNED:
            os.sched_setaffinity(self.proc.pid, {SERVER_CPU})

    def last_error(self) -> str:
        """The last line the server wrote to stderr."""
        self.stderr.seek(0)
        lines = self.stderr.read().strip().splitlines()
        return lines[-1] if lines else ""

    def alive(self) -> bool:
        """True if running; a server that died is noted and started again."""
        if self.proc is None:
            return False
        if self.proc.poll() is None:
            return True
        self.deaths.append(self.last_error() or f"exit status {self.proc.returncode}")
        self.start()
        return self.proc is not None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure(server: Server, conns: int, size: int, duration: float,
            warmup: float) -> dict[str, Any]:
    """One client run against server; the raw numbers plus per-round-trip figures."""
    if not server.alive():
        return {"error": f"server not running: {server.skipped or server.deaths[-1:]}"}
    assert server.proc is not None
    argv = [PY, str(BENCH / "client.py"), "--port", str(server.port), "--conns", str(conns),
            "--size", str(size), "--duration", str(duration), "--warmup", str(warmup),
            "--server-pid", str(server.proc.pid)]
    if CLIENT_CPU is not None:
        argv += ["--cpu", str(CLIENT_CPU)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    except subprocess.TimeoutExpired:
        return {"error": "client timed out"}
    lines = out.stdout.strip().splitlines()
    try:
        raw = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"client failed: {out.stderr.strip()[-300:]}"}
    if "error" in raw or not raw.get("round_trips"):
        return {"error": raw.get("error", "no round trips")}
    n, wall = raw["round_trips"], raw["wall"]
    raw.update(
        rps=n / wall,
        user_us=raw["server_user"] / n * 1e6,
        sys_us=raw["server_sys"] / n * 1e6,
        server_share=(raw["server_user"] + raw["server_sys"]) / wall,
        client_share=(raw["client_user"] + raw["client_sys"]) / wall,
    )
    raw["others_share"] = max(0.0, raw["machine_busy"] / wall - raw["server_share"]
                              - raw["client_share"])
    return raw


def measure_quietly(server: Server, conns: int, size: int, duration: float, warmup: float,
                    log: Any, retries: int = RETRIES) -> dict[str, Any]:
    """measure(), again (up to retries times) while other processes took a core's NOISY.

    The machine is shared: a test suite started by someone else halves a server's speed
    for a few seconds.  Interleaving protects the ratios from slow drifts; this, and the
    make-up measurements in run_echo, protect them from bursts.  The last attempt is
    returned either way, with its others_share, so summarize() can tell it apart.
    """
    for attempt in range(retries + 1):
        result = measure(server, conns, size, duration, warmup)
        result["attempts"] = attempt + 1
        if result.get("others_share", 0.0) <= NOISY:
            break
        log(f"    {server.name} {conns}x{size}: others took {result['others_share']:.0%} "
            "of a core" + (", measuring again" if attempt < retries else ", kept"))
        if attempt < retries:
            time.sleep(1.0)
    return result


def clean(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The windows other processes left alone (others_share within NOISY)."""
    return [r for r in runs if "error" not in r and r["others_share"] <= NOISY]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A point's figures over its passes: over the clean windows when there are 3 or more,
    else over every window (then marked noisy).  Also whether it was client-bound."""
    good = [r for r in runs if "error" not in r]
    quiet = clean(runs)
    use = quiet if len(quiet) >= MIN_CLEAN else good
    out: dict[str, Any] = {"passes": len(good), "used": len(use), "errors": [
        r["error"] for r in runs if "error" in r]}
    for key in ("rps", "server_share", "client_share", "others_share"):
        out[key] = median(r[key] for r in use)
    # CPU per round trip is pooled over the windows (total CPU / total round trips): the
    # kernel splits user from system time by sampling at its tick (250 Hz here), so one
    # window's split wobbles by ~10%; pooling is the better estimate.
    trips = sum(r["round_trips"] for r in use)
    for key, field_ in (("user_us", "server_user"), ("sys_us", "server_sys")):
        out[key] = sum(r[field_] for r in use) / trips * 1e6 if trips else float("nan")
    out["client_bound"] = bool(use) and out["client_share"] > CLIENT_BOUND
    out["noisy"] = sum(r["others_share"] > NOISY for r in use)  # used despite others' load
    out["retries"] = sum(r["attempts"] - 1 for r in runs if "attempts" in r)
    return out


def measured_at(server: Server, size: int) -> bool:
    """Is server measured with size-byte messages?  (See SMALL_ONLY.)"""
    return size == 100 or server.name not in SMALL_ONLY


def run_echo(names: list[str], points: list[tuple[int, int]], passes: int,
             duration: float, warmup: float, log: Any, deadline: float) -> dict[str, Any]:
    """Every server at every (conns, size) point, passes times, interleaved.

    Retries and make-up measurements happen only before deadline (a perf_counter time),
    so a busy machine makes the numbers noisier, not the run endless.
    """
    started = time.perf_counter()
    servers = [Server(name) for name in names]
    for s in servers:
        s.start()
        log(f"  {s.name}: " + (f"skipped ({s.skipped})" if s.skipped else f"port {s.port}"))
    live = [s for s in servers if not s.skipped]
    raw: dict[str, list[dict[str, Any]]] = {}

    def one(s: Server, conns: int, size: int, retries: int) -> None:
        if time.perf_counter() > deadline:
            retries = 0
        result = measure_quietly(s, conns, size, duration, warmup, log, retries)
        raw.setdefault(f"{s.name}|{conns}|{size}", []).append(result)

    try:
        # Unmeasured warm-up: a fresh server's first seconds are slow (allocator and page
        # faults; asyncio's 256 KiB recv buffers go through mmap until glibc adapts).
        for s in live:
            for conns, size in {(100, 100), *((10, max(sz for _, sz in points)),)}:
                measure(s, conns, size, max(duration / 2, 0.5), warmup)
        log(f"  warmed up every server ({time.perf_counter() - started:.0f} s)")
        for p in range(passes):
            for conns, size in points:
                t0 = time.perf_counter()
                for s in live[p % len(live):] + live[:p % len(live)]:  # rotating order
                    if measured_at(s, size):
                        one(s, conns, size, RETRIES)
                last = [(s.name, raw[f"{s.name}|{conns}|{size}"][-1]) for s in live
                        if measured_at(s, size)]
                rates = ", ".join(f"{name} {r.get('rps', 0):,.0f}" for name, r in last)
                log(f"  pass {p + 1}/{passes} {conns:>5} conns {size:>6} B "
                    f"({time.perf_counter() - t0:4.1f} s): {rates}")
        # Make-up windows for points with too few clean ones, while time is left.
        for _round in range(2):
            short = [(s, c, z) for c, z in points for s in live if measured_at(s, z)
                     and len(clean(raw[f"{s.name}|{c}|{z}"])) < MIN_CLEAN]
            if not short or time.perf_counter() > deadline:
                break
            log(f"  make-up round: {len(short)} server/point pairs short of clean windows")
            for s, c, z in short:
                if time.perf_counter() > deadline:
                    break
                one(s, c, z, 0)
    finally:
        for s in servers:
            s.stop()
    table = {key: summarize(runs) for key, runs in raw.items()}
    return {
        "points": [list(pt) for pt in points], "passes": passes, "duration": duration,
        "servers": {s.name: {"skipped": s.skipped, "deaths": s.deaths} for s in servers},
        "summary": table, "raw": raw,
    }


def run_c10k(conns: int, size: int, duration: float, log: Any) -> dict[str, Any]:
    """conns concurrent connections to a fresh pyos server, every byte of every echo checked."""
    server = Server("pyos")
    server.start()
    if server.skipped or server.proc is None:
        return {"error": server.skipped}
    try:
        base_kb = proc_status_kb("VmRSS", server.proc.pid)
        result = measure_quietly(server, conns, size, duration, 0.5, log)
        if server.proc.poll() is None:
            result["server_peak_kb"] = proc_status_kb("VmHWM", server.proc.pid)
            result["server_kb_per_conn"] = (result["server_peak_kb"] - base_kb) / conns
        result["server_deaths"] = server.deaths
    finally:
        server.stop()
    log(f"  {conns} connections: {result.get('rps', 0):,.0f} round trips/s "
        f"{result.get('error', '')}")
    return result
