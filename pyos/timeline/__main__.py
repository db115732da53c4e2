"""``python -m pyos.timeline run.json [--width N]``: draw a timeline in the terminal."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from .text import render

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pyos.timeline",
        description="Draw a pyos timeline (PYOS_TIMELINE=run.json) as text: one line per "
                    "task, time across.")
    parser.add_argument("path", help="the timeline file, a Chrome trace in JSON")
    parser.add_argument("--width", type=int, default=None,
                        help="columns for the time axis (default: fit the terminal)")
    args = parser.parse_args(argv)
    try:
        with open(args.path, encoding="utf-8") as f:
            trace = json.load(f)
    except (OSError, ValueError) as exc:
        parser.exit(1, f"cannot read {args.path}: {exc}\n")
    width = args.width
    if width is None:   # what is left of the terminal after the task names and borders
        width = max(20, shutil.get_terminal_size().columns - 32)
    if width < 1:
        parser.error(f"--width must be at least 1, not {width}")
    sys.stdout.write(render(trace, width, title=args.path) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
