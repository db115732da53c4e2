"""demos/echo_client.py against the echo server demo, and against a corrupting server."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading

from helpers import DEMOS


def run_client(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(DEMOS / "echo_client.py"), *args],
                          input=stdin, capture_output=True, timeout=30)


def test_echo_client_interactive_and_load(start):
    """echo_client: stdin comes back on stdout; load mode checks every byte and reports a rate."""
    server = start("-q")
    lines = b"hello\n" + bytes(range(256)) + b"\nlast line\n"
    done = run_client("--port", str(server.port), stdin=lines)
    assert done.returncode == 0 and done.stdout == lines
    done = run_client("--port", str(server.port), "--conns", "20", "--rounds", "50",
                      "--size", "300")
    assert done.returncode == 0, done.stderr
    assert re.search(rb"^1000 round trips .* round trips/s$", done.stdout, re.M), done.stdout


def test_echo_client_detects_a_corrupt_echo():
    """Load mode fails (exit 1, says which byte) against a server that flips one byte."""
    listener = socket.create_server(("127.0.0.1", 0))

    def corrupting_server():
        conn, _ = listener.accept()
        with conn:
            data = b""
            while len(data) < 10 and (chunk := conn.recv(10 - len(data))):
                data += chunk
            conn.sendall(data[:5] + bytes([data[5] ^ 1]) + data[6:])

    thread = threading.Thread(target=corrupting_server, daemon=True)
    thread.start()
    try:
        done = run_client("--port", str(listener.getsockname()[1]), "--conns", "1",
                          "--rounds", "3", "--size", "10")
    finally:
        listener.close()
    assert done.returncode == 1
    assert b"byte 5" in done.stderr
