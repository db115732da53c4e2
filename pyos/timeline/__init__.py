"""A timeline to look at: every task's run slices, waits and wake-ups, one row per task.

``Scheduler(timeline="run.json")``, ``pyos.run(main(), timeline="run.json")`` or
``PYOS_TIMELINE=run.json`` in the environment records them (the newest
``timeline_events=100_000``) and writes them when the scheduler closes, in the Chrome
trace event format: open the file in https://ui.perfetto.dev or chrome://tracing.
``python -m pyos.timeline run.json`` draws the same rows in a terminal.

recorder.py records, chrome.py writes the format, text.py draws the terminal chart.
"""

from .chrome import chrome_trace
from .recorder import Timeline
from .text import render

__all__ = ["Timeline", "chrome_trace", "render"]
