"""Profile the pyos echo server under load: where does its CPU go per round trip?

    python benchmarks/profile_server.py [--conns 100] [--size 100] [--duration 5] [--timeout]

Why: the targets compare pyos against peers; when it falls short, the answer is in the
server's own functions.  This runs demos/echo_server.py under cProfile (unchanged, as
the benchmark runs it), drives it with benchmarks/client.py, stops it with SIGINT (the
demo unwinds cleanly, so cProfile writes its data) and prints the functions by own time,
with a per-round-trip figure.  cProfile slows Python code several-fold, so read the
shares, not the absolute times.  For the switch loop: ``switches.py pyos --profile``.
``--timeout`` profiles benchmarks/servers/pyos_timeout_server.py instead: the same server
with every recv under ``timeout_after``, to see what the deadline costs and where.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile

from common import BENCH, ROOT
from echo import CLIENT_CPU, SERVER_CPU


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--timeout", action="store_true",
                        help="profile the server whose every recv runs under timeout_after")
    args = parser.parse_args(argv)
    script = (BENCH / "servers" / "pyos_timeout_server.py" if args.timeout
              else ROOT / "demos" / "echo_server.py")
    out = tempfile.NamedTemporaryFile(suffix=".prof", delete=False).name
    server = subprocess.Popen(
        [sys.executable, "-m", "cProfile", "-o", out, str(script), "-q", "--port", "0"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert server.stdout is not None
    port = int(server.stdout.readline().rsplit(":", 1)[1])
    if SERVER_CPU is not None:
        os.sched_setaffinity(server.pid, {SERVER_CPU})
    client = [sys.executable, str(BENCH / "client.py"), "--port", str(port), "--conns",
              str(args.conns), "--size", str(args.size), "--duration", str(args.duration),
              "--server-pid", str(server.pid)]
    if CLIENT_CPU is not None:
        client += ["--cpu", str(CLIENT_CPU)]
    result = json.loads(subprocess.run(client, capture_output=True, text=True).stdout)
    server.send_signal(signal.SIGINT)
    server.wait(timeout=30)
    total = result.get("total_round_trips", 0)
    print(f"{total:,} round trips in all ({result.get('round_trips', 0) / result['wall']:,.0f}"
          f"/s under the profiler; {result['server_user'] / result['round_trips'] * 1e6:.1f} "
          "µs user per round trip)")
    stats = pstats.Stats(out)
    os.unlink(out)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
    grand = sum(v[2] for _, v in rows)
    print(f"{'own s':>8} {'share':>6} {'calls/rt':>9} {'µs/rt':>7}  function")
    for (path, line, func), (_cc, calls, tottime, _ct, _callers) in rows[: args.top]:
        where = f"{os.path.relpath(path, ROOT) if path.startswith('/') else path}:{line}"
        print(f"{tottime:8.3f} {tottime / grand:6.1%} {calls / max(total, 1):9.2f} "
              f"{tottime / max(total, 1) * 1e6:7.2f}  {func} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
