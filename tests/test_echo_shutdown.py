"""demos/echo_server.py shutting down on SIGINT: at once, cleanly, idle or under load."""

from __future__ import annotations

import contextlib
import threading
import time

from helpers import round_trip, wait_for


def test_sigint_shuts_down_cleanly(start):
    """SIGINT: exit 0 within 2 s, no traceback, every client sees EOF, the port is free at once."""
    server = start()
    clients = [server.connect() for _ in range(3)]
    try:
        assert [round_trip(c) for c in clients] == [b"ping"] * 3
        assert wait_for(server.idle)
        assert server.interrupt() < 2.0
        assert server.proc.returncode == 0
        assert "Traceback" not in server.stderr()
        assert [c.recv(10) for c in clients] == [b""] * 3
    finally:
        for c in clients:
            c.close()
    again = start("--port", str(server.port))
    assert again.port == server.port


def test_sigint_under_load_is_clean(start):
    """SIGINT while clients are streaming: still exit 0 and no traceback on stderr."""
    server = start("-q")
    socks = [server.connect() for _ in range(4)]
    stop = threading.Event()

    def pump(sock):   # send and read back as fast as the server echoes, until it goes away
        with contextlib.suppress(OSError):
            while not stop.is_set() and sock.send(b"x" * 65536) and sock.recv(1 << 20):
                pass

    threads = [threading.Thread(target=pump, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)   # let the load build up
        assert server.interrupt() < 2.0
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for s in socks:
            s.close()
    assert server.proc.returncode == 0
    assert "Traceback" not in server.stderr()
