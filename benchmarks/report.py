"""Turn the results dictionary into Markdown: machine, tables, and the target summary.

Why separate from the runner: the same rendering serves the live run and a later
``python benchmarks/report.py results/latest.json`` to re-print saved results.  Targets
are only ever reported here, as ratios against peers measured in the same run; nothing
asserts on them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from timeout_report import timeout_costs, timeouts_md

BASE = "asyncio-protocol"  # the column every echo server's ratio is taken against


def _f(x: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def machine_md(m: dict[str, Any]) -> list[str]:
    peers = ", ".join(f"{k} {v}" for k, v in m["peers"].items()) or "none"
    return [
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
        f"{m['memory_gib']} GiB, Linux {m['kernel']}, {m['implementation']} {m['python']}; "
        f"peers: {peers}; RLIMIT_NOFILE {m['nofile_limit'][0]}/{m['nofile_limit'][1]}.",
        f"pyos commit measured: {m.get('pyos_before', '?')} at the start, "
        f"{m.get('pyos_after', '?')} at the end.",
        f"Load average (1/5/15 min) before the run: {m['load_before']}, after: "
        f"{m.get('load_after', '?')} (anything above ~0 means other work shared the cores).",
    ]


def switches_md(sw: dict[str, Any]) -> list[str]:
    rows = ["## Task switches (N tasks x M bare yields; peers: `await sleep(0)`)", "",
            "| scheduler | tasks x yields | switches/s | pyos is |", "|---|---|---:|---:|"]
    pyos = sw.get("pyos", {}).get("per_s")
    for impl, r in sw.items():
        if "skipped" in r:
            rows.append(f"| {impl} | | skipped: {r['skipped']} | |")
            continue
        ratio = f"{pyos / r['per_s']:.2f}x" if pyos and impl != "pyos" else ""
        rows.append(f"| {impl} | {r['tasks']:,} x {r['yields']:,} | {_f(r['per_s'])} | "
                    f"{ratio} |")
    return [*rows, ""]


def memory_md(mem: dict[str, Any]) -> list[str]:
    rows = ["## Memory and spawn cost per blocked task (fresh process each; peak RSS "
            "minus baseline)", "",
            "| tasks blocked in | tasks | bytes/task | spawn+block µs/task | vs asyncio-future |",
            "|---|---:|---:|---:|---:|"]
    base = mem.get("asyncio-future", {}).get("bytes_per_task")
    for kind, r in mem.items():
        if "skipped" in r:
            rows.append(f"| {kind} | | skipped: {r['skipped']} | | |")
            continue
        ratio = f"{r['bytes_per_task'] / base:.2f}x" if base else ""
        rows.append(f"| {kind} | {r['tasks']:,} | {_f(r['bytes_per_task'])} | "
                    f"{_f(r['spawn_us'], '.2f')} | {ratio} |")
    return [*rows, ""]


PRIMITIVES = {
    "pingpong": "Queue ping-pong between two tasks (round trips/s)",
    "bounded": "bounded Queue (10 slots), 10 producers and 10 consumers (items/s)",
    "lock": "Lock contended by 100 tasks, each yielding once while holding it "
            "(acquisitions/s)",
    "event": "Event waking 10,000 waiters, from set() until all have run (wake-ups/s)",
    "gather": "gather of 1,000 tasks that yield once (tasks/s)",
    "uncontended": "uncontended Lock acquire + release (pairs/s)",
}


def primitives_md(prim: dict[str, Any]) -> list[str]:
    """One table: a row per case, ops/s per scheduler, and pyos (generator tasks) / peer."""
    impls = ["pyos", "pyos-async", "asyncio", "curio", "trio"]
    out = ["## Queues, locks, events and gather (fresh processes, each case repeated; the "
           "best)", "",
           "pyos runs generator tasks (`yield q.get()`) and, as pyos-async, async ones "
           "(`await q.get()`); trio has no queue, its memory channels stand in.  "
           "The ratios are pyos / peer (higher is better for pyos).", "",
           "| case | " + " | ".join(impls) + " | pyos / asyncio | pyos / curio | "
           "pyos / trio |", "|---|" + "---:|" * (len(impls) + 3)]
    for case, results in prim.items():
        cells, rates = [], {}
        for impl in impls:
            r = results.get(impl, {})
            if "per_s" in r:
                rates[impl] = r["per_s"]
                cells.append(_f(r["per_s"]))
            else:
                cells.append(f"skipped: {r.get('skipped', 'not run')}")
        best = rates.get("pyos")
        ratios = [f"{best / rates[p]:.2f}x" if best and p in rates else "n/a"
                  for p in ("asyncio", "curio", "trio")]
        out.append(f"| {PRIMITIVES.get(case, case)} | " + " | ".join(cells + ratios) + " |")
    return [*out, ""]


def echo_md(echo: dict[str, Any]) -> list[str]:
    summary, points = echo["summary"], [tuple(p) for p in echo["points"]]
    names = list(echo["servers"])
    out = [f"## Echo round trips ({echo['passes']} interleaved passes x {echo['duration']} s "
           "per point)", "",
           "Round trips/s and CPU shares are medians over the passes; server user/sys µs per "
           "round trip are pooled over them (the kernel samples the user/sys split at its "
           "tick).  Server and client are pinned to separate cores.  * = client-bound: the "
           "client used > 80% of a core, so the client, not the server, set the pace.  A "
           "window in which other processes used > 25% of a core is measured again, and "
           "points short of 3 clean windows get make-up windows while time allows; the "
           "figures use the clean windows when there are 3 or more.  'others' is the "
           "median share of a core other processes used.", ""]
    head = " | ".join(f"{c:,} x {s:,} B" for c, s in points)
    out += [f"| server | {head} |", "|---|" + "---:|" * len(points)]
    for name in names:
        if echo["servers"][name]["skipped"]:
            out.append(f"| {name} | skipped: {echo['servers'][name]['skipped']} |")
            continue
        cells = []
        for c, s in points:
            r = summary.get(f"{name}|{c}|{s}", {})
            cells.append(_f(r.get("rps")) + ("*" if r.get("client_bound") else ""))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    for c, s in points:
        out += [f"### {c:,} connections, {s:,}-byte messages", "",
                f"| server | round trips/s | vs {BASE} | user µs/rt | sys µs/rt | server CPU | "
                "client CPU | others | note |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        base = summary.get(f"{BASE}|{c}|{s}", {}).get("rps")
        for name in names:
            r = summary.get(f"{name}|{c}|{s}")
            if r is None:
                continue
            notes = ["client-bound"] if r["client_bound"] else []
            if r.get("noisy"):
                notes.append(f"{r['noisy']} of {r['used']} windows shared with other load")
            elif r.get("used", r["passes"]) < r["passes"]:
                notes.append(f"median of {r['used']} clean windows of {r['passes']}")
            if r["errors"]:
                notes.append(f"{len(r['errors'])} failed: {r['errors'][0][:60]}")
            ratio = f"{r['rps'] / base:.2f}x" if base and r["passes"] else "n/a"
            out.append(
                f"| {name} | {_f(r['rps'])} | {ratio} | {_f(r['user_us'], '.2f')} | "
                f"{_f(r['sys_us'], '.2f')} | {_f(100 * r['server_share'])}% | "
                f"{_f(100 * r['client_share'])}% | {_f(100 * r.get('others_share', 0))}% | "
                f"{'; '.join(notes)} |")
        out.append("")
    out += timeouts_md(summary, sorted({c for c, s in points if s == 100}))
    deaths = {n: v["deaths"] for n, v in echo["servers"].items() if v["deaths"]}
    if deaths:
        out += [f"Servers that died and were restarted: {deaths}", ""]
    return out


def workers_md(w: dict[str, Any]) -> list[str]:
    """The plain demo against ``--workers 1, 2, 4``: round trips/s and where the CPU went."""
    c, s = w["points"][0]
    out = [f"## Echo with run_workers ({c:,} connections x {s:,} B, {w['passes']} passes x "
           f"{w['duration']} s)", "",
           "`pyos` is the plain demo, pinned to one core as above; `pyos-workers-N` is "
           "`demos/echo_server.py --workers N`, left free to use every core (the client "
           "stays pinned to its own).  Server CPU is the supervisor's and every worker's, in "
           "cores; when server + client + others reach the machine's cores, the machine, not "
           "pyos, sets the pace.", "",
           "| server | round trips/s | vs pyos | server µs/rt | server CPU | client CPU | "
           "others | note |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    base = w["summary"].get(f"pyos|{c}|{s}", {}).get("rps")
    for name, info in w["servers"].items():
        r = w["summary"].get(f"{name}|{c}|{s}")
        if info["skipped"] or r is None:
            out.append(f"| {name} | skipped: {info['skipped'] or 'not measured'} | | | | | | |")
            continue
        notes = (["client-bound"] if r["client_bound"] else []) + (
            [f"{len(r['errors'])} failed: {r['errors'][0][:60]}"] if r["errors"] else [])
        ratio = f"{r['rps'] / base:.2f}x" if base else "n/a"
        out.append(f"| {name} | {_f(r['rps'])} | {ratio} | "
                   f"{_f(r['user_us'] + r['sys_us'], '.2f')} | {r['server_share']:.2f} | "
                   f"{r['client_share']:.2f} | {r.get('others_share', 0):.2f} | "
                   f"{'; '.join(notes)} |")
    return [*out, ""]


def c10k_md(r: dict[str, Any]) -> list[str]:
    out = ["## 10,000 concurrent connections against pyos (every byte checked)", ""]
    if "error" in r:
        return [*out, f"FAILED: {r['error']}", ""]
    return [*out,
            "| connections | connect+first echo | round trips/s | user µs/rt | sys µs/rt | "
            "bytes checked | server RSS/conn | client CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {r['conns']:,} | {r['connect_s']:.2f} s | {_f(r['rps'])} | "
            f"{r['user_us']:.2f} | {r['sys_us']:.2f} | {r['bytes_checked']:,} | "
            f"{_f(r.get('server_kb_per_conn', float('nan')), '.1f')} KiB | "
            f"{100 * r['client_share']:.0f}% |", ""]


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what was measured, the goal, PASS/FAIL (n/a when not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: float, higher: bool, unit: str,
            note: str = "") -> None:
        if value is None or value != value:
            status = "n/a"
        else:
            status = "PASS" if (value >= goal if higher else value <= goal) else "FAIL"
        out.append({"target": name, "measured": value, "goal": goal, "unit": unit,
                    "status": status, "note": note, "higher_is_better": higher})

    kernel = res.get("kernel", {})
    if "pyos_ns" in kernel:
        add("kernel_cost.py: pyos / floor loop, ns per echo round trip",
            kernel["pyos_ns"] / kernel["floor_ns"], 1.5, False, "x",
            f"pyos {kernel['pyos_ns']:.0f} ns, floor {kernel['floor_ns']:.0f} ns; with "
            f"timeout_after on every recv {kernel['timeout_ns']:.0f} ns")
    summary = res.get("echo", {}).get("summary", {})
    for conns in (10, 100):
        pyos = summary.get(f"pyos|{conns}|100", {})
        for peer, goal in (("asyncio-protocol", 1.1), ("asyncio-streams", 1.6)):
            other = summary.get(f"{peer}|{conns}|100", {})
            ratio = pyos["rps"] / other["rps"] if pyos and other else None
            pair = (("pyos", pyos), (peer, other))
            bound = [n for n, r in pair if r.get("client_bound")]
            noisy = [n for n, r in pair if r.get("noisy")]
            add(f"echo {conns} conns x 100 B: pyos / {peer}", ratio, goal, True, "x",
                "; ".join(([f"client-bound: {', '.join(bound)}"] if bound else [])
                          + ([f"noisy: {', '.join(noisy)}"] if noisy else [])))
    for conns in (10, 100):   # what a deadline on every read costs, beside asyncio's
        (pyos_cost, asyncio_cost), bound = timeout_costs(summary, conns)
        add(f"echo {conns} conns x 100 B, timeout_after on every recv: pyos-timeout / pyos",
            pyos_cost and pyos_cost[0], 0.85, True, "x", "asyncio-timeout / asyncio-streams: "
            + (f"{asyncio_cost[0]:.2f}x" if asyncio_cost else "n/a")
            + "".join(f"; {b}" for b in bound))
    for conns in (10, 100):
        pyos = summary.get(f"pyos|{conns}|100", {})
        proto = summary.get(f"asyncio-protocol|{conns}|100", {}).get("user_us")
        mine = pyos.get("user_us")
        add(f"server user CPU per round trip, {conns} conns x 100 B: pyos / asyncio-protocol",
            mine / proto if mine and proto else None, 0.85, False, "x",
            f"pyos {_f(mine, '.2f')} µs (the old goal: 2.5 µs), asyncio-protocol "
            f"{_f(proto, '.2f')} µs")
    for case, prim in res.get("primitives", {}).items():
        mine, peer = prim.get("pyos", {}).get("per_s"), prim.get("asyncio", {}).get("per_s")
        add(f"primitives, {case}: pyos (generator tasks) / asyncio",
            mine / peer if mine and peer else None, 2.0, True, "x",
            "pyos-async / asyncio: " + _ratio(prim.get("pyos-async", {}).get("per_s"), peer))
    sw = res.get("switches", {})
    if "per_s" in sw.get("pyos", {}) and "per_s" in sw.get("asyncio", {}):
        add("task switches: pyos / asyncio sleep(0)", sw["pyos"]["per_s"] /
            sw["asyncio"]["per_s"], 8.0, True, "x")
    mem = res.get("memory", {})
    if "bytes_per_task" in mem.get("pyos-wait", {}) and "bytes_per_task" in mem.get(
            "asyncio-future", {}):
        add("memory per blocked task: pyos WaitTask / asyncio await-future",
            mem["pyos-wait"]["bytes_per_task"] / mem["asyncio-future"]["bytes_per_task"],
            0.45, False, "x")
    return out


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def targets_md(tgts: list[dict[str, Any]]) -> list[str]:
    rows = ["## Targets", "", "| target | measured | goal | result | note |",
            "|---|---:|---:|---|---|"]
    for t in tgts:
        unit, fmt = t["unit"], ".2f"
        sign = ">=" if t["higher_is_better"] else "<="
        rows.append(f"| {t['target']} | {_f(t['measured'], fmt)}{unit} | {sign} {t['goal']}"
                    f"{unit} | {t['status']} | {t['note']} |")
    return [*rows, ""]


def render(res: dict[str, Any]) -> str:
    """The whole report, in the order a reader wants it: summary first."""
    lines = [f"# pyos benchmarks ({res['mode']} run, {res['started']}, "
             f"{res.get('elapsed_s', 0):.0f} s)", "", *machine_md(res["machine"]), ""]
    lines += targets_md(res.get("targets", []))
    if "switches" in res:
        lines += switches_md(res["switches"])
    if "memory" in res:
        lines += memory_md(res["memory"])
    if "primitives" in res:
        lines += primitives_md(res["primitives"])
    if "echo" in res:
        lines += echo_md(res["echo"])
    if "c10k" in res:
        lines += c10k_md(res["c10k"])
    if "workers" in res:
        lines += workers_md(res["workers"])
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(render(json.load(f)))
