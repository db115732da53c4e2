"""The monitor from outside the process: the echo demo with --monitor, and the client
``python -m pyos.monitor`` run as a subprocess against it.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from monitor_helpers import LIMIT


def test_the_echo_demo_with_a_monitor_and_the_client(start, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    server = start("--monitor")
    path = tmp_path / f"pyos-monitor-{server.proc.pid}.sock"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert f"pyos monitor listening on unix:{path}" in server.stderr()
    client = server.connect()                 # one echo client, so one more task
    client.sendall(b"hello")
    assert client.recv(5) == b"hello"
    out = subprocess.run(
        [sys.executable, "-m", "pyos.monitor", str(server.proc.pid), "-c", "ps", "-c", "waits"],
        capture_output=True, text=True, timeout=LIMIT)
    assert out.returncode == 0, out.stderr
    assert "    1  listener " in out.stdout and "    2  client " in out.stdout
    assert "2 blocked, 0 ready or running" in out.stdout
    typed = subprocess.run([sys.executable, "-m", "pyos.monitor"], input="stats\nkill 2\n",
                           capture_output=True, text=True, timeout=LIMIT)  # finds it alone
    assert typed.returncode == 0, typed.stderr
    assert "tasks        2 " in typed.stdout and "killed task 2 (client " in typed.stdout
    client.settimeout(LIMIT)
    assert client.recv(5) == b""              # its task was killed: its socket closed
    client.close()
    server.interrupt()
    assert not path.exists()


def test_the_chat_demo_with_a_monitor(start, tmp_path, monkeypatch):
    """The chat demo takes --monitor too: its sessions and their writers show in ps."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    server = start("--monitor", demo="chat_server.py")
    path = tmp_path / f"pyos-monitor-{server.proc.pid}.sock"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    client = server.connect()
    client.settimeout(LIMIT)
    assert client.recv(200)                   # its welcome: the session is running
    out = subprocess.run(
        [sys.executable, "-m", "pyos.monitor", str(server.proc.pid), "-c", "ps"],
        capture_output=True, text=True, timeout=LIMIT)
    assert out.returncode == 0, out.stderr
    assert "session 127.0.0.1:" in out.stdout, out.stdout
    client.close()
    server.interrupt()
    assert not path.exists()


def test_the_chat_demo_refuses_a_monitor_outside_loopback(tmp_path):
    demo = os.path.join(os.path.dirname(__file__), "..", "demos", "chat_server.py")
    out = subprocess.run([sys.executable, demo, "--port", "0", "--monitor", "tcp:8.8.8.8:1"],
                         capture_output=True, text=True, timeout=LIMIT)
    assert out.returncode == 2 and "loopback" in out.stderr, out.stderr
