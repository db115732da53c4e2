# Every target sets itself up: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
# below Linux's ephemeral ports (32768-60999), which a client may hold right after `make test`
PORT   ?= 25000
CHAT_PORT ?= 25001

.PHONY: demo chat test lint bench tour pipeline timeline-picture clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,lint]"
	touch $(STAMP)

demo: $(STAMP)  ## run the echo server (Ctrl-C stops it)
	$(PY) demos/echo_server.py --host $(HOST) --port $(PORT)

chat: $(STAMP)  ## run the chat server (nc to it; Ctrl-C says goodbye to every client)
	$(PY) demos/chat_server.py --host $(HOST) --port $(CHAT_PORT)

tour: $(STAMP)  ## a tour of the system calls
	$(PY) demos/tasks.py

pipeline: $(STAMP)  ## stages joined by bounded queues, a worker pool (Ctrl-C unwinds it)
	$(PY) demos/pipeline.py

test: $(STAMP)  ## the whole suite
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check pyos tests demos benchmarks

$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]" || echo "some benchmark peers failed to install; they will be reported as skipped"
	touch $(VENV)/.bench

bench: $(VENV)/.bench  ## pyos against asyncio, uvloop, curio and trio, and over 1, 2, 4 workers (QUICK=1: short)
	$(PY) benchmarks/run.py $(if $(QUICK),--quick,)

$(VENV)/.docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(VENV)/.docs

timeline-picture: $(VENV)/.docs  ## docs/timeline.png: the echo server's timeline, drawn
	$(PY) demos/timeline_picture.py docs/timeline.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
