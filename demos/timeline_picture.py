"""Draw the README's picture: the echo server's timeline while it serves a few clients.

    python demos/timeline_picture.py [docs/timeline.png] [--keep run.json]

``make timeline-picture`` installs matplotlib (the ``docs`` extra, needed only here) and
runs this.  It starts demos/echo_server.py with ``PYOS_TIMELINE`` set, as anyone would,
has three clients talk to it from threads, overlapping (two send a message and read
its echo at their own pace, the third sends a lot and reads it slowly, so that the
server has to wait to write), stops the server with SIGINT (the timeline is written as
it closes), then plots the file: one row per task, black where it ran, a colour per
kind of wait.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TALKERS = [  # (start after, messages, pause between them, message size): seconds, bytes
    (0.000, 5, 0.010, 20),
    (0.012, 4, 0.007, 2000),
]
SLOW_READER = (0.020, 6 << 20, 0.0005)   # start after, bytes sent at once, pause per read


def talker(port: int, start: float, messages: int, pause: float, size: int,
           errors: list[BaseException]) -> None:
    """Connect at start, send each message and read all of its echo, then close."""
    try:
        time.sleep(start)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            for _ in range(messages):
                sock.sendall(b"x" * size)
                read(sock, size, 0.0)
                time.sleep(pause)
    except BaseException as exc:
        errors.append(exc)


def slow_reader(port: int, start: float, size: int, pause: float,
                errors: list[BaseException]) -> None:
    """Send size bytes at once (from a thread) but read the echo slowly, through a small
    receive buffer: the server's sendall soon has to wait for the client."""
    try:
        time.sleep(start)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            sender = threading.Thread(target=sock.sendall, args=(b"x" * size,))
            sender.start()
            read(sock, size, pause)
            sender.join(5)
    except BaseException as exc:
        errors.append(exc)


def read(sock: socket.socket, size: int, pause: float) -> None:
    got = 0
    while got < size:
        chunk = sock.recv(min(65536, size - got))
        if not chunk:
            raise ConnectionError("the server closed early")
        got += len(chunk)
        time.sleep(pause)


def record(path: Path) -> None:
    """Run the echo server with a timeline and the clients against it."""
    env = dict(os.environ, PYOS_TIMELINE=str(path), PYTHONUNBUFFERED="1")
    server = subprocess.Popen([sys.executable, str(HERE / "echo_server.py"), "--port", "0",
                               "-q"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if "listening on" not in line:
            raise SystemExit(f"the echo server did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1])
        errors: list[BaseException] = []
        threads = [threading.Thread(target=talker, args=(port, *c, errors)) for c in TALKERS]
        threads.append(threading.Thread(target=slow_reader, args=(port, *SLOW_READER, errors)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        if errors:
            raise SystemExit(f"a client failed: {errors[0]!r}")
        time.sleep(0.05)                      # the handlers see EOF and exit
    finally:
        server.send_signal(signal.SIGINT)     # it unwinds, closes, writes the timeline
        server.wait(30)


def colour(wait: str) -> str:
    """One colour per kind of wait (what a wait is named, less its numbers)."""
    if wait.startswith("waiting to read"):
        return "#9ecae1"
    if wait.startswith("waiting to write"):
        return "#fdae6b"
    return "#d9d9d9"


def plot(trace: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    events = trace["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    slices = [e for e in events if e.get("ph") == "X"]
    clients = [e for e in slices if e["tid"] != 1]           # task 1 is the listener
    first = min(e["ts"] for e in clients) - 2000               # µs: 2 ms either side
    last = max(e["ts"] + e["dur"] for e in clients if e["cat"] == "run") + 2000
    rows = sorted(names)
    labels = []                                               # (text, bar start, bar end)
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(rows) + 1.3), dpi=110)
    min_width = (last - first) / 1500                         # a run of 1 µs still shows
    for row, tid in enumerate(rows):
        for e in slices:
            if e["tid"] != tid or e["ts"] + e["dur"] < first or e["ts"] > last:
                continue
            a, b = max(e["ts"], first), min(e["ts"] + e["dur"], last)
            x, w = (a - first) / 1000, max(b - a, min_width) / 1000
            if e["cat"] == "run":
                ax.broken_barh([(x, w)], (row - 0.35, 0.7), color="black")
            else:
                ax.broken_barh([(x, w)], (row - 0.2, 0.4), color=colour(e["name"]))
                text = ax.text(x + w / 2, row, e["name"], ha="center", va="center", fontsize=7)
                labels.append((text, x, x + w))
    ax.set_yticks(range(len(rows)), [names[tid] for tid in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, (last - first) / 1000)
    ax.set_xlabel("milliseconds (time.perf_counter)")
    ax.set_title("pyos echo server, three clients (the last reads slowly): one row per task",
                 fontsize=10, loc="left")
    ax.legend(handles=[Patch(color="black", label="running"),
                       Patch(color=colour("waiting to read"), label="waiting to read"),
                       Patch(color=colour("waiting to write"), label="waiting to write"),
                       Patch(color=colour(""), label="other waits")],
              loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=8,
              frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    for text, start, end in labels:   # say what a wait is on only where the bar has room
        (left, _), (right, _) = ax.transData.transform([(start, 0), (end, 0)])
        if text.get_window_extent(renderer).width > (right - left) - 6:
            text.remove()
    fig.savefig(out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default=str(HERE.parent / "docs" / "timeline.png"))
    parser.add_argument("--keep", help="also keep the timeline file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.keep or Path(tmp) / "echo.json")
        record(path)
        with open(path, encoding="utf-8") as f:
            trace = json.load(f)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(trace, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
