"""Beazley's pipelines on pyos tasks: a producer, stages joined by bounded queues, a pool.

    python demos/pipeline.py [--count N] [--workers W] [--delay SECONDS] [--maxsize M]

    producer --lines--> parse --records--> W workers --results--> sink

A web server's access log flows through it: the producer makes log lines, ``parse``
splits them into records (dropping malformed lines), a pool of workers in a TaskGroup
"looks up" each record (a Sleep stands in for the slow part) and the sink adds up what
comes out.  Each queue is bounded, so a slow stage holds back the ones before it
(backpressure) instead of letting a queue grow.  Each stage ends the same way: when its
input is shut down and empty, its ``async for`` loop ends and it shuts down its own
output, so the end of the data flows down the pipeline.  Ctrl-C unwinds every task
(each stage says so) and exits with status 130.  ``make pipeline`` runs it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

import pyos
from pyos import Queue, Sleep, TaskGroup


def log_line(i: int) -> str:
    """The i-th line of a made-up access log; every 17th one is garbage."""
    if i % 17 == 16:
        return "?? truncated line"
    status = 500 if i % 13 == 12 else 404 if i % 7 == 6 else 200
    return f"10.0.{i % 4}.{i % 250} GET /page/{i % 10} {status} {(i * 37) % 5000}"


def unwound(stage: str, finished: bool, how_far: str) -> None:
    """Called from each stage's finally block: say so if Ctrl-C cut it short."""
    if not finished:
        print(f"  {stage}: unwound {how_far}", flush=True)


def produce(lines: Queue, count: int) -> object:
    """A generator task: yield lines.put(...) waits while the queue is full."""
    n, finished = 0, False
    try:
        for n in range(count):
            yield lines.put(log_line(n))
        lines.shutdown()                   # no more lines: parse ends once it has read them
        finished = True
        return count
    finally:
        unwound("producer", finished, f"after {n} lines")


async def parse(lines: Queue, records: Queue) -> tuple[int, int]:
    """Split each line into a record; drop the ones that do not parse."""
    good = bad = 0
    finished = False
    try:
        async for line in lines:           # ends when lines is shut down and empty
            fields = line.split()
            if len(fields) != 5:
                bad += 1
                continue
            host, _method, path, status, size = fields
            await records.put((host, path, int(status), int(size)))
            good += 1
        records.shutdown()
        finished = True
        return good, bad
    finally:
        unwound("parse", finished, f"after {good + bad} lines")


async def worker(records: Queue, results: Queue, delay: float) -> int:
    """One of the pool: a slow look-up per record."""
    done = 0
    async for _host, _path, status, size in records:
        await Sleep(delay)                 # stands in for a DNS or database look-up
        await results.put((status, size))
        done += 1
    return done


async def pool(records: Queue, results: Queue, workers: int, delay: float) -> int:
    """W workers in a task group: if one fails, the others are cancelled."""
    finished = False
    try:
        async with TaskGroup("workers") as group:
            for n in range(workers):
                await group.spawn(worker(records, results, delay), name=f"worker {n + 1}")
        results.shutdown()                 # every worker is done: the sink can finish
        finished = True
        return sum(group.results)
    finally:
        unwound("pool", finished, f"with its {workers} workers")


async def sink(results: Queue, every: int) -> tuple[dict[int, int], int]:
    """Add up statuses and bytes; report progress every so many records."""
    statuses: dict[int, int] = {}
    total = seen = 0
    finished = False
    try:
        async for status, size in results:
            statuses[status] = statuses.get(status, 0) + 1
            total += size
            seen += 1
            if seen % every == 0:
                print(f"  sink: {seen} records so far", flush=True)
        finished = True
        return statuses, total
    finally:
        unwound("sink", finished, f"after {seen} records")


async def main(count: int, workers: int, delay: float, maxsize: int, every: int) -> None:
    lines = Queue(maxsize, name="lines")
    records = Queue(maxsize, name="records")
    results = Queue(maxsize, name="results")
    print(f"pipeline: {count} lines -> parse -> {workers} workers -> sink "
          f"(queues of {maxsize})", flush=True)
    async with TaskGroup("pipeline") as stages:
        await stages.spawn(produce(lines, count), name="producer")
        await stages.spawn(parse(lines, records), name="parse")
        await stages.spawn(pool(records, results, workers, delay), name="pool")
        await stages.spawn(sink(results, every), name="sink")
    produced, (good, bad), looked_up, (statuses, total) = stages.results
    print(f"  producer: {produced} lines")
    print(f"  parse: {good} records, {bad} malformed lines dropped")
    print(f"  workers: {looked_up} records looked up")
    print("  sink: " + ", ".join(f"status {s}: {n}" for s, n in sorted(statuses.items()))
          + f"; {total:,} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=500, help="log lines to produce")
    parser.add_argument("--workers", type=int, default=4, help="size of the worker pool")
    parser.add_argument("--delay", type=float, default=0.001, help="seconds per look-up")
    parser.add_argument("--maxsize", type=int, default=8, help="room in each queue")
    parser.add_argument("--every", type=int, help="report progress every N records "
                        "(default: a fifth of --count)")
    args = parser.parse_args()
    every = args.every or max(1, args.count // 5)
    start = time.perf_counter()
    try:
        pyos.run(main(args.count, args.workers, args.delay, args.maxsize, every))
    except KeyboardInterrupt:
        print("interrupted: every task was unwound", flush=True)
        sys.exit(130)
    print(f"done in {time.perf_counter() - start:.2f} s")
