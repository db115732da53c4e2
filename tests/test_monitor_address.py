"""Starting the monitor: where it listens, who may open it, what it refuses."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading

import pytest
from monitor_helpers import LIMIT, Client

import pyos
from pyos.monitor.address import default_path


# -- Starting it -------------------------------------------------------------------------
def test_the_unix_socket_is_its_owners_alone_and_goes_at_close(tmp_path, caplog):
    path = tmp_path / "m.sock"
    sched = pyos.Scheduler(monitor=f"unix:{path}")
    mode = os.stat(path).st_mode
    client = Client(f"unix:{path}")           # a client still connected at close
    sched.close()
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert not path.exists()
    assert client.sock.recv(100) == b""       # its connection ended
    client.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("pyos-monitor")]
    assert f"pyos monitor listening on unix:{path}" in caplog.text


def test_true_and_the_environment_pick_the_default_socket(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    expected = tmp_path / f"pyos-monitor-{os.getpid()}.sock"
    assert default_path() == str(expected)
    for options, env in (({"monitor": True}, None), ({}, "1"), ({}, "unix:" + str(expected))):
        if env is not None:
            monkeypatch.setenv("PYOS_MONITOR", env)
        sched = pyos.Scheduler(**options)
        assert stat.S_IMODE(os.stat(expected).st_mode) == 0o600
        sched.close()
        assert not expected.exists()
    for off in ("0", "off", ""):
        monkeypatch.setenv("PYOS_MONITOR", off)
        sched = pyos.Scheduler()
        assert sched._monitor is None
        sched.close()
    monkeypatch.setenv("PYOS_MONITOR", "1")
    sched = pyos.Scheduler(monitor=False)     # the program's word wins
    assert sched._monitor is None
    sched.close()


@pytest.mark.parametrize("address", [
    "tcp:0.0.0.0:0", "tcp:8.8.8.8:0", "tcp:[::]:0", "tcp:example.com:0", "tcp:127.0.0.1:99999",
    "udp:127.0.0.1:0", "somewhere", "unix:",
])
def test_an_address_outside_loopback_or_malformed_is_refused_at_start(address):
    fds = len(os.listdir("/proc/self/fd"))

    def main():
        yield

    with pytest.raises(ValueError, match="monitor address"):
        pyos.run(main(), monitor=address)
    assert len(os.listdir("/proc/self/fd")) == fds   # nothing half-opened is left


def test_a_stale_socket_is_replaced_a_live_one_or_a_file_is_not(tmp_path):
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))                       # bound, never listening: stale
    pyos.Scheduler(monitor=f"unix:{stale}").close()
    live = pyos.Scheduler(monitor=f"unix:{stale}")
    try:
        with pytest.raises(OSError, match="another monitor"):
            pyos.Scheduler(monitor=f"unix:{stale}")
    finally:
        live.close()
    regular = tmp_path / "notes.txt"
    regular.write_text("mine")
    with pytest.raises(FileExistsError):
        pyos.Scheduler(monitor=f"unix:{regular}")
    assert regular.read_text() == "mine"


def test_the_echo_demo_refuses_a_monitor_outside_loopback():
    out = subprocess.run([sys.executable, str(_demo()), "--port", "0", "--monitor",
                          "tcp:0.0.0.0:0"], capture_output=True, text=True, timeout=LIMIT)
    assert out.returncode == 2 and "loopback only" in out.stderr


def _demo():
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "demos", "echo_server.py")
