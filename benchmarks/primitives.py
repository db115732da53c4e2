"""Coordination primitives: pyos's queues, locks, events and gather beside the peers'.

    python benchmarks/primitives.py CASE IMPL [--scale S]

CASE is one of:

* ``pingpong``: two tasks bounce an item through two queues (a round trip is a put and
  a get each way, and two task switches);
* ``bounded``: 10 producers and 10 consumers through one queue of 10 slots;
* ``lock``: 100 tasks take turns at one lock, each yielding once while it holds it;
* ``event``: 10,000 tasks wait for one event; timed from ``set()`` until every one has
  run (each then waits again, so that task exits are not what is timed);
* ``gather``: gather 1,000 tasks that each yield once and return a value;
* ``uncontended``: acquire and release a lock nobody else wants (the fast path).

IMPL is pyos (generator tasks), pyos-async (async tasks), asyncio, curio or trio.  trio
has no queue: its memory channels stand in (the same work).  Peers yield with
``sleep(0)``, pyos tasks with a bare ``yield`` (a generator task's way to give up the
CPU).  Each run is a fresh process that does the case ``--repeat`` times over (a fresh
event loop or scheduler each time) and prints one JSON object with ``per_s``, operations
per second: the best of the repeats, whose rates are listed in ``repeats``.  Why the
best, as ``timeit`` and ``kernel_cost.py`` take it: several cases last 10-50 ms, and on a
shared machine whole processes ran at half speed, for pyos and its peers alike (the
event case went from 1.1 to 0.5 million wake-ups/s between two processes in a row);
other work only ever adds time, so the fastest repeat is the one it disturbed least.
``benchmarks/run.py --only primitives`` runs them all, interleaved.  The cases themselves
are in ``benchmarks/prims/``, one module per peer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # pyos from the checkout

from prims import GATHERED, SIZES  # (this script's folder is on the path)


def _pyos(case: str, n: int) -> float:
    from prims.pyos_cases import pyos_case
    return pyos_case(case, n, use_async=False)


def _pyos_async(case: str, n: int) -> float:
    from prims.pyos_cases import pyos_case
    return pyos_case(case, n, use_async=True)


def _asyncio(case: str, n: int) -> float:
    from prims.asyncio_cases import asyncio_case
    return asyncio_case(case, n)


def _curio(case: str, n: int) -> float:
    from prims.curio_cases import curio_case
    return curio_case(case, n)


def _trio(case: str, n: int) -> float:
    from prims.trio_cases import trio_case
    return trio_case(case, n)


IMPLS: dict[str, Callable[[str, int], float]] = {
    "pyos": _pyos, "pyos-async": _pyos_async, "asyncio": _asyncio, "curio": _curio,
    "trio": _trio,
}



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=sorted(SIZES))
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the sizes")
    parser.add_argument("--repeat", type=int, default=1, help="runs of the case; the best counts")
    args = parser.parse_args(argv)
    n = max(GATHERED, int(SIZES[args.case] * args.scale))
    rates = []
    for _ in range(max(1, args.repeat)):
        try:
            elapsed = IMPLS[args.impl](args.case, n)
        except ValueError as exc:
            print(json.dumps({"case": args.case, "impl": args.impl, "error": str(exc)}))
            return 0
        rates.append(n / elapsed)
    print(json.dumps({"case": args.case, "impl": args.impl, "ops": n,
                      "per_s": max(rates), "median_per_s": statistics.median(rates),
                      "repeats": rates}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
