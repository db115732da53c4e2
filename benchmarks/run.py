"""``make bench``: pyos against asyncio, uvloop, curio, trio, bare epoll and generator loops.

    python benchmarks/run.py [--quick] [--only kernel,switches,memory,primitives,echo,c10k,workers]

Why one entry point: the numbers only mean something as ratios between schedulers
measured in the same run on the same machine, so one script measures them all, prints
the machine, the tables and the target summary as Markdown, and saves both the Markdown
and the raw JSON in benchmarks/results/ (latest.* for a full run, latest-quick.* for
--quick).  Every measurement runs in a fresh process.  Peers that cannot be imported
are reported as skipped.  A full run takes 12-15 minutes (more retries when
the machine is busy), --quick under two minutes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import BENCH, ROOT, machine, median, pyos_version, raise_nofile
from echo import run_c10k, run_echo
from report import render, targets

PY = sys.executable
PEER_MODULE = {"uvloop": "uvloop", "curio": "curio", "trio": "trio"}
C10K = 10_000
PRIMITIVE_CASES = ["pingpong", "bounded", "lock", "event", "gather", "uncontended"]


def log(msg: str) -> None:
    """Progress goes to stderr, so stdout carries only the final report."""
    print(msg, file=sys.stderr, flush=True)


def skipped_peer(name: str) -> str:
    module = PEER_MODULE.get(name.split("-")[0])
    if module and importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return ""


def run_script(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a benchmark script in a fresh interpreter; its last stdout line is JSON."""
    try:
        out = subprocess.run([PY, *argv], capture_output=True, text=True, timeout=timeout,
                             cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        err = out.stderr.strip().splitlines()
        return {"error": err[-1] if err else f"exit status {out.returncode}"}


def interleaved(names: list[str], runs: int, argv_of: Any, key: str,
                timeout: float, pick: Any = None) -> dict[str, dict[str, Any]]:
    """runs rounds of every name in turn; for each name, the median of every figure
    (or, with pick, key's figure from the run pick chooses: max for a best-of)."""
    raw: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(runs):
        for name in names:
            if skipped_peer(name):
                continue
            result = run_script(argv_of(name), timeout)
            raw[name].append(result)
            log(f"  run {r + 1}/{runs} {name}: " + (
                result["error"] if "error" in result else f"{result[key]:,.1f} {key}"))
    out: dict[str, dict[str, Any]] = {}
    for name, results in raw.items():
        good = [x for x in results if "error" not in x]
        if not good:
            reason = skipped_peer(name) or (results[0]["error"] if results else "not run")
            out[name] = {"skipped": reason}
            continue
        out[name] = {k: v for k, v in good[0].items() if not isinstance(v, float)}
        for k in good[0]:
            if isinstance(good[0][k], float):
                out[name][k] = median(x[k] for x in good)
        if pick is not None:
            out[name][key] = pick(x[key] for x in good)
        out[name]["runs"] = good
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (under two minutes)")
    parser.add_argument("--only", default=None,
                        help="comma-separated sections to run (default: all; --quick leaves "
                             "out workers, which needs more cores than the client uses)")
    parser.add_argument("--passes", type=int, help="echo passes per point (default 3)")
    parser.add_argument("--duration", type=float, help="seconds per echo measurement")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    quick = args.quick
    only = args.only or ("kernel,switches,memory,primitives,echo,c10k"
                         + ("" if quick else ",workers"))
    sections = set(only.split(","))
    nofile = raise_nofile(C10K + 1024)  # the client needs it; servers inherit it too
    started = time.perf_counter()
    res: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    log(render({**res, "targets": []}).split("## Targets")[0].strip())

    if "kernel" in sections:   # the steadiest gauge: pyos's own time, no system calls
        log("kernel cost per echo round trip (kernel_cost.py) ...")
        res["kernel"] = run_script([str(BENCH / "kernel_cost.py"), "--json", "--repeat",
                                    "3" if quick else "7"], 300)

    if "switches" in sections:
        log("task switches ...")
        yields = 200 if quick else 1000
        def sw_argv(name: str) -> list[str]:
            m = yields // 10 if name == "curio" else yields  # curio: ~80k switches/s
            return [str(BENCH / "switches.py"), name, "--tasks", "1000", "--yields", str(m)]
        res["switches"] = interleaved(["pyos", "asyncio", "uvloop", "curio", "trio"], 3,
                                      sw_argv, "per_s", 120)

    if "memory" in sections:
        log("memory per blocked task ...")
        kinds = ["pyos-wait", "asyncio-future"]
        if not quick:
            kinds += ["pyos-sleep", "asyncio-sleep", "curio-event", "trio-event"]
        def mem_argv(kind: str) -> list[str]:
            n = 10_000 if kind.startswith("curio") else 100_000  # curio spawn is O(n) each
            return [str(BENCH / "memory.py"), kind, "--tasks", str(n)]
        res["memory"] = interleaved(kinds, 1 if quick else 3, mem_argv, "bytes_per_task", 300)

    if "primitives" in sections:
        log("queues, locks, events and gather ...")
        res["primitives"] = {}
        impls = ["pyos", "pyos-async", "asyncio", "curio", "trio"]
        for case in PRIMITIVE_CASES:
            def prim_argv(impl: str, case: str = case) -> list[str]:
                return [str(BENCH / "primitives.py"), case, impl,
                        "--scale", "0.25" if quick else "1", "--repeat", "3" if quick else "5"]
            res["primitives"][case] = interleaved(impls, 1 if quick else 3, prim_argv,
                                                  "per_s", 120, pick=max)

    if "echo" in sections:
        log("echo round trips ...")
        conns = [10, 100] if quick else [1, 10, 100, 1000]
        sizes = [100] if quick else [100, 10240]
        names = ["pyos", "asyncio-streams", "asyncio-protocol", "uvloop-protocol", "curio",
                 "trio", "epoll-callbacks", "generator-floor", "pyos-timeout",
                 "asyncio-timeout"]
        res["echo"] = run_echo(
            names, [(c, s) for s in sizes for c in conns], args.passes or (2 if quick else 4),
            args.duration or (0.5 if quick else 1.5), 0.2 if quick else 0.3, log,
            deadline=started + (55 if quick else 810))  # leaves time for the 10k test

    if "c10k" in sections:
        log(f"{C10K:,} concurrent connections against pyos ...")
        if nofile < C10K + 100:
            res["c10k"] = {"error": f"RLIMIT_NOFILE is {nofile}: {C10K:,} connections need "
                                    f"{C10K + 100:,} (raise the hard limit)"}
        else:
            res["c10k"] = run_c10k(C10K, 100, 1.0 if quick else 3.0, log)

    if "workers" in sections:
        # The demo over run_workers with 1, 2 and 4 workers against the plain demo: what
        # more processes buy, and on a small machine, what the client's own core leaves.
        log("echo round trips with run_workers ...")
        res["workers"] = run_echo(
            ["pyos", *(f"pyos-workers-{n}" for n in (1, 2, 4))], [(100, 100)],
            args.passes or 3, args.duration or (0.5 if quick else 1.5),
            0.2 if quick else 0.3, log, deadline=time.perf_counter() + (30 if quick else 120))

    res["elapsed_s"] = time.perf_counter() - started
    res["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    res["machine"]["pyos_after"] = pyos_version()
    res["targets"] = targets(res)
    text = render(res)
    print(text, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "latest-quick" if quick else "latest"
    for suffix, body in ((".json", json.dumps(res, indent=1, default=str)), (".md", text)):
        tmp = args.out / f"{stem}{suffix}.tmp"
        tmp.write_text(body + "\n")
        os.replace(tmp, args.out / f"{stem}{suffix}")
    log(f"saved {args.out / stem}.json and .md ({res['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
