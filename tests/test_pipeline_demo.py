"""demos/pipeline.py, run as a subprocess: the whole pipeline, and Ctrl-C in the middle.

The totals are fixed by the made-up log, whatever order the workers finish in; Ctrl-C
must unwind every stage (each says so from its finally block) and exit with 130.
"""

from __future__ import annotations

import select
import signal
import subprocess
import sys

from helpers import DEMOS

PIPELINE = str(DEMOS / "pipeline.py")


def test_pipeline_runs_to_the_end_and_adds_up():
    out = subprocess.run([sys.executable, PIPELINE, "--count", "300", "--workers", "3",
                          "--delay", "0", "--maxsize", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""                       # nothing logged: no failure, no warning
    lines = out.stdout.splitlines()
    assert lines[0] == "pipeline: 300 lines -> parse -> 3 workers -> sink (queues of 2)"
    assert lines[1:6] == [f"  sink: {n} records so far" for n in (60, 120, 180, 240)] + [
        "  producer: 300 lines"]
    assert lines[6:9] == [
        "  parse: 283 records, 17 malformed lines dropped",
        "  workers: 283 records looked up",
        "  sink: status 200: 224, status 404: 37, status 500: 22; 653,842 bytes",
    ]
    assert lines[9].startswith("done in ")


def test_ctrl_c_unwinds_every_stage():
    proc = subprocess.Popen([sys.executable, PIPELINE, "--count", "1000000",
                             "--delay", "0.01", "--every", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for _ in range(3):                        # the header, then progress: it is running
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, f"no output within 20 s: {seen}"
            seen.append(proc.stdout.readline())
        assert "records so far" in seen[-1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    lines = out.splitlines()
    assert lines[-1] == "interrupted: every task was unwound"
    unwound = sorted(line.split(":")[0].strip() for line in lines if "unwound " in line)
    assert unwound == ["parse", "pool", "producer", "sink"]
    assert "Traceback" not in err
