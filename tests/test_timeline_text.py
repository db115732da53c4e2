"""The text viewer, ``python -m pyos.timeline FILE``: one line per task, time across."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_text_viewer_draws_one_line_per_task(tmp_path):
    """A hand-made trace, 100 µs in 10 columns of 10 µs: runs win over waits in a column."""
    trace = {"traceEvents": [
        {"name": "thread_name", "ph": "M", "pid": 7, "tid": 1, "args": {"name": "1 main"}},
        {"name": "thread_name", "ph": "M", "pid": 7, "tid": 12, "args": {"name": "12 worker"}},
        {"name": "running", "cat": "run", "ph": "X", "pid": 7, "tid": 1, "ts": 0, "dur": 10},
        {"name": "waiting for task 12", "cat": "wait", "ph": "X", "pid": 7, "tid": 1,
         "ts": 10, "dur": 80},
        {"name": "running", "cat": "run", "ph": "X", "pid": 7, "tid": 1, "ts": 90, "dur": 10},
        {"name": "running", "cat": "run", "ph": "X", "pid": 7, "tid": 12, "ts": 10, "dur": 2},
        {"name": "sleeping for 0.000s more", "cat": "wait", "ph": "X", "pid": 7, "tid": 12,
         "ts": 12, "dur": 48},
        {"name": "waiting to read fd 5", "cat": "wait", "ph": "X", "pid": 7, "tid": 12,
         "ts": 60, "dur": 20},
        {"name": "running", "cat": "run", "ph": "X", "pid": 7, "tid": 12, "ts": 80, "dur": 1},
        {"name": "woken by timer", "cat": "wake", "ph": "i", "s": "t", "pid": 7,
         "tid": 12, "ts": 60},
    ]}
    path = tmp_path / "small.json"
    path.write_text(json.dumps(trace))
    out = subprocess.run([sys.executable, "-m", "pyos.timeline", str(path), "--width", "10"],
                         cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.splitlines() == [
        f"{path}: 2 tasks over 100.000 µs, 1 column = 10 µs",
        "█ running   · waiting   blank: ready to run, or not alive",
        "",
        " 1 main   |█········█|",
        "12 worker | █······█ |",
        "           0 100.000 µs",
        "",
        "waited on (most time first):",
        " 1 main    waiting for task 12",
        "12 worker  sleeping for 0.000s more; waiting to read fd 5",
    ]


def test_the_text_viewer_says_what_it_cannot_read(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pyos.timeline", str(tmp_path / "none.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith(f"cannot read {tmp_path / 'none.json'}: [Errno 2]")
