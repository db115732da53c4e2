"""A timeline drawn in a terminal: one line per task, time across.

For those without a browser at hand, ``python -m pyos.timeline run.json`` draws the rows
Perfetto would: ``█`` where the task ran, ``·`` where it waited, blank where it was
ready to run (or not alive).  Each column covers an equal share of the time, and a
column in which the task ran at all is drawn as running, so even a run of a few
microseconds shows.  Below the chart, what each task waited on, most time first.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = ["RUNNING", "WAITING", "render"]

RUNNING = "█"
WAITING = "·"


def render(trace: dict[str, Any] | list[dict[str, Any]], width: int = 72,
           title: str = "timeline") -> str:
    """The chart of a Chrome trace (as ``Timeline`` writes it), width columns wide."""
    if width < 1:
        raise ValueError(f"width must be at least 1 column, not {width!r}")
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {e["tid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    slices = [e for e in events if e.get("ph") == "X" and e.get("cat") in ("run", "wait")]
    if not slices:
        return f"{title}: no run or wait slices to draw"
    first = min(e["ts"] for e in slices)
    last = max(e["ts"] + e["dur"] for e in slices)
    column = (last - first) / width or 1.0       # microseconds per column
    rows: dict[int, list[str]] = {}
    waited: defaultdict[int, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in sorted(slices, key=lambda e: e["cat"] == "run"):   # waits first: runs win
        row = rows.setdefault(e["tid"], [" "] * width)
        a = min(width - 1, int((e["ts"] - first) / column))
        b = max(a, min(width - 1, math.ceil((e["ts"] + e["dur"] - first) / column) - 1))
        mark = RUNNING if e["cat"] == "run" else WAITING
        row[a:b + 1] = mark * (b - a + 1)
        if e["cat"] == "wait":
            waited[e["tid"]][e["name"]] += e["dur"]
    digits = len(str(max(rows)))
    labels = {tid: _label(tid, names.get(tid, str(tid)), digits) for tid in rows}
    pad = min(28, max(len(label) for label in labels.values()))
    unit, scale = _unit(last - first)
    lines = [
        f"{title}: {len(rows)} tasks over {(last - first) / scale:.3f} {unit}, "
        f"1 column = {column / scale:.3g} {unit}",
        f"{RUNNING} running   {WAITING} waiting   blank: ready to run, or not alive",
        "",
    ]
    for tid in sorted(rows):
        lines.append(f"{_fit(labels[tid], pad):<{pad}} |{''.join(rows[tid])}|")
    end = f"{(last - first) / scale:.3f} {unit}"
    lines.append(f"{'':<{pad + 2}}0{end:>{max(width - 1, len(end) + 1)}}")
    if waited:
        lines += ["", "waited on (most time first):"]
        for tid in sorted(waited):
            whats = sorted(waited[tid], key=waited[tid].__getitem__, reverse=True)
            more = f"; and {len(whats) - 3} more" if len(whats) > 3 else ""
            lines.append(f"{_fit(labels[tid], pad):<{pad}}  {'; '.join(whats[:3])}{more}")
    return "\n".join(lines)


def _unit(span_us: float) -> tuple[str, float]:
    """The unit a span of microseconds reads best in, and its size in microseconds."""
    if span_us >= 1e6:
        return "s", 1e6
    if span_us >= 1e3:
        return "ms", 1e3
    return "µs", 1.0


def _label(tid: int, name: str, digits: int) -> str:
    """ "7 client 5000" (as the trace names rows) with the id right-aligned."""
    number, _, rest = name.partition(" ")
    return f"{tid:>{digits}} {rest if number == str(tid) else name}"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
