"""The recorder's events as a Chrome trace: what Perfetto and chrome://tracing draw.

The format is the Trace Event Format's JSON object, ``{"traceEvents": [...]}``, with
timestamps in microseconds.  Each task is a thread of the pyos process, so the viewer
draws one row per task:

* ``"ph": "M"`` metadata names each row "TID NAME" and sorts the rows by task id;
* a run slice is a complete event (``"ph": "X"``) named "running", category "run";
* a wait is a complete event named by what the task waited on ("waiting to read fd 7",
  "sleeping for 0.100s more"), category "wait", with who woke it in its args;
* a wake-up is an instant event (``"ph": "i"``) "woken by ..." where the wait ended,
  and, when a task woke it, a flow arrow (``"ph": "s"`` / ``"f"``, bound to the slices
  that enclose them) from the waker's run slice to the woken task's next one;
* an exit is an instant event "exited: returned" (or killed, cancelled, raised ...).

The recorder keeps compact tuples (below) and this module turns them into the format
only when the file is written, so recording stays cheap.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

__all__ = ["EXIT", "RUN", "WAIT", "chrome_trace"]

#: (RUN, tid, start, end): a task ran from start to end (perf_counter seconds).
RUN = 0
#: (WAIT, tid, since, until, what, waker, waker_since): a task waited; waker is a phase
#: ("I/O", "timer"), the tid of the task whose run slice from waker_since woke it, or None
#: when nothing woke it (it was killed, or its wake-up went unseen).
WAIT = 1
#: (EXIT, tid, when, name, how): a task ended.
EXIT = 2


def chrome_trace(events: Iterable[tuple[Any, ...]], still_waiting: Iterable[tuple[int, float, str]],
                 live: dict[int, str], origin: float, end: float, pid: int,
                 max_events: int) -> dict[str, Any]:
    """The trace of events (oldest first), with the waits still open at end.

    live names the tasks still running; the others are named by their exit events.
    Times are perf_counter seconds, written as microseconds since origin.
    """
    events = list(events)
    names = dict(live)
    starts: defaultdict[int, list[float]] = defaultdict(list)   # tid -> its runs' starts
    ends: defaultdict[int, list[float]] = defaultdict(list)     # ... and their ends
    for event in events:
        if event[0] == EXIT:
            names[event[1]] = event[3]
        elif event[0] == RUN:
            starts[event[1]].append(event[2])
            ends[event[1]].append(event[3])

    def us(t: float) -> float:
        return round((t - origin) * 1e6, 3)

    def span(tid: int, name: str, cat: str, start: float, stop: float,
             **args: Any) -> dict[str, Any]:
        slice_ = {"name": name, "cat": cat, "ph": "X", "pid": pid, "tid": tid,
                  "ts": us(start), "dur": round(us(stop) - us(start), 3)}  # never overlaps
        if args:
            slice_["args"] = args
        return slice_

    def instant(tid: int, name: str, at: float) -> dict[str, Any]:
        return {"name": name, "cat": "wake" if name.startswith("woken") else "exit",
                "ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": us(at)}

    out: list[dict[str, Any]] = []
    flows = 0
    for event in events:
        kind, tid = event[0], event[1]
        if kind == RUN:
            out.append(span(tid, "running", "run", event[2], event[3]))
        elif kind == EXIT:
            out.append(instant(tid, f"exited: {event[4]}", event[2]))
        else:
            _, _, since, until, what, waker, waker_since = event
            if waker is None:
                out.append(span(tid, what, "wait", since, until))
                continue
            by = f"task {waker} ({names.get(waker, '?')})" if isinstance(waker, int) else waker
            out.append(span(tid, what, "wait", since, until, woken_by=by))
            out.append(instant(tid, f"woken by {by}", until))
            i = bisect_left(starts[tid], until)
            if isinstance(waker, int) and i < len(starts[tid]):  # an arrow to its next run
                # Each end of the arrow lies in the middle of its slice, which then
                # encloses it beyond doubt ("bp": "e"), whatever order ties are read in.
                flows += 1
                flow = {"name": "wake-up", "cat": "wake", "id": flows, "pid": pid}
                out.append({**flow, "ph": "s", "tid": waker, "ts": us((waker_since + until) / 2)})
                out.append({**flow, "ph": "f", "bp": "e", "tid": tid,
                            "ts": us((starts[tid][i] + ends[tid][i]) / 2)})
    for tid, since, what in still_waiting:
        out.append(span(tid, what, "wait", since, end, woken_by="nothing yet: still waiting"))
    out.sort(key=lambda e: e["ts"])

    meta: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": f"pyos (pid {pid})"}}]
    for tid in sorted({e["tid"] for e in out}):
        name = names.get(tid, "?")
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"name": f"{tid} {name}"}})
        meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                     "args": {"sort_index": tid}})
    return {
        "traceEvents": meta + out,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "pyos timeline", "clock": "time.perf_counter",
            "origin": origin, "events": len(events), "max_events": max_events,
            "full": len(events) >= max_events,
        },
    }
