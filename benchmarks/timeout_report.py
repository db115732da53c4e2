"""The cost of a timeout, for the report: each runtime with a deadline on every read
against the same server without one, in the same echo passes.

Why its own module: report.py renders every section; this is the one section that pairs
servers rather than comparing each with asyncio's Protocol, and the pairing is used by
both its table and its target (issue 14: pyos-timeout at least 0.85x pyos, asyncio's
own ratio beside it for comparison).
"""

from __future__ import annotations

from typing import Any

from echo import CLIENT_BOUND

#: What a timeout on every read is measured against: (with timeouts, without), per runtime.
TIMEOUT_PAIRS = (("pyos-timeout", "pyos"), ("asyncio-timeout", "asyncio-streams"))


def timeout_costs(summary: dict[str, Any], conns: int) -> tuple[list[Any], list[str]]:
    """Per TIMEOUT_PAIRS: (round trips kept, user µs added) or None; and what bounds them.

    A ratio says little where the client set the pace, or where the server sat idle
    (one connection: each round trip waits on the other side), so those are named.
    """
    costs, bound = [], []
    for pair in TIMEOUT_PAIRS:
        t, p = (summary.get(f"{n}|{conns}|100", {}) for n in pair)
        ok = "rps" in t and "rps" in p
        costs.append((t["rps"] / p["rps"], t["user_us"] - p["user_us"]) if ok else None)
        for name, r in zip(pair, (t, p), strict=True):
            if r.get("client_bound"):
                bound.append(f"{name} client-bound")
            elif r.get("server_share", 1.0) < CLIENT_BOUND:
                bound.append(f"{name} idle {1 - r['server_share']:.0%}")
    return costs, bound


def timeouts_md(summary: dict[str, Any], conns: list[int]) -> list[str]:
    """Each runtime with a deadline on every read against itself without it.

    User CPU added is the deadline's own cost: system time grows too, mostly because a
    slower server finds its client asleep more often, and the wake-up is charged to send.
    """
    if not any(f"{TIMEOUT_PAIRS[0][0]}|{c}|100" in summary for c in conns):
        return []
    out = ["### A deadline on every read (100-byte messages)", "",
           "pyos: `timeout_after(60, client.recv(n))`; asyncio: `async with "
           "asyncio.timeout(60)` around `reader.read(n)`.  Round trips kept (with / without; "
           "pyos's target >= 0.85x) and user µs added per round trip.", "",
           "| connections | pyos-timeout / pyos | user µs added | asyncio-timeout / "
           "asyncio-streams | user µs added | bounded by |", "|---:|---:|---:|---:|---:|---|"]
    for c in conns:
        costs, bound = timeout_costs(summary, c)
        cells = [f"{x[0]:.2f}x | {x[1]:+.2f}" if x else "n/a | n/a" for x in costs]
        out.append(f"| {c:,} | " + " | ".join(cells) + f" | {', '.join(bound)} |")
    return [*out, ""]
