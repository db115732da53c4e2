"""demos/echo_server.py as a user runs it (a subprocess on port 0): correctness, load,
misbehaving clients, memory, descriptors and logging.  Shutdown is in
test_echo_shutdown.py, demos/echo_client.py in test_echo_client.py.

Clients are plain blocking or selector-driven sockets, so a pyos bug cannot hide itself.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import select
import selectors
import signal
import socket
import struct
import time

import pytest
from helpers import DEMOS, Server, round_trip, wait_for


def exchange(sock: socket.socket, payload: bytes, limit: float = 20.0) -> bytes:
    """Send payload and half-close while reading the echo, until EOF; return what came back."""
    sock.setblocking(False)
    got, view, sent = bytearray(), memoryview(payload), 0
    deadline = time.monotonic() + limit
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while time.monotonic() < deadline:
            for _, events in sel.select(1.0):
                if events & selectors.EVENT_WRITE:
                    sent += sock.send(view[sent:sent + 65536])
                    if sent == len(payload):
                        sock.shutdown(socket.SHUT_WR)
                        sel.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        return bytes(got)
                    got += chunk
    raise AssertionError(f"no EOF within {limit} s: sent {sent}, got {len(got)}")


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("poller", ["epoll", "select"])
def test_echoes_every_byte_exactly(start, poller):
    """All 256 byte values and 4 MB of random bytes come back unchanged, then EOF."""
    server = start("-q", "--poller", poller)
    with server.connect() as sock:
        assert round_trip(sock, bytes(range(256))) == bytes(range(256))
        payload = bytes(range(256)) * 64 + os.urandom(4 << 20)
        assert exchange(sock, payload) == payload


def test_thousand_clients_at_once(start):
    """1,000 clients connecting at the same moment (queued while it was stopped) all get echoes."""
    server = start("-q")
    socks, done = [], set()
    os.kill(server.proc.pid, signal.SIGSTOP)   # the kernel completes all 1,000 handshakes
    try:
        for i in range(1000):
            socks.append(server.connect())
            socks[-1].sendall(b"%04d" % i)
        os.kill(server.proc.pid, signal.SIGCONT)
        began = time.monotonic()
        with selectors.DefaultSelector() as sel:
            for i, sock in enumerate(socks):
                sel.register(sock, selectors.EVENT_READ, i)
            while len(done) < 1000 and time.monotonic() - began < 10:
                for key, _events in sel.select(0.5):
                    if key.fileobj.recv(16) == b"%04d" % key.data:
                        done.add(key.data)
                    sel.unregister(key.fileobj)
        elapsed = time.monotonic() - began
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
        for sock in socks:
            sock.close()
    assert len(done) == 1000, f"only {len(done)} of 1000 clients were served"
    assert elapsed < 5.0


def test_reset_and_half_close_do_not_hurt_others(start):
    """A client that resets mid-echo and one that half-closes leave the others served."""
    server = start()
    with server.connect() as steady, server.connect() as resetter:
        assert round_trip(steady) == b"ping"
        resetter.setblocking(False)
        for _ in range(64):   # the server now blocks sending to a client that never reads
            try:
                resetter.send(b"r" * 65536)
            except BlockingIOError:
                break
        reset(resetter)
        with server.connect() as half:
            assert exchange(half, b"half-closed " * 1000) == b"half-closed " * 1000
        assert round_trip(steady, b"still here") == b"still here"
        assert wait_for(lambda: "dropped:" in server.stderr())   # the reset was noticed
    assert server.proc.poll() is None
    assert "Traceback" not in server.stderr()


def test_backpressure_bounds_server_memory(start):
    """A client that sends 64 MB and never reads makes the server hold well under 3 MiB."""
    server = start("-q")
    with server.connect() as other, server.connect() as hog:
        with server.connect() as warm_up:
            assert len(exchange(warm_up, os.urandom(1 << 20))) == 1 << 20
        before = server.status("VmRSS")
        hog.setblocking(False)
        sent, stalled = 0, 0
        while sent < 64 << 20 and stalled < 3:
            if select.select([], [hog], [], 0.2)[1]:
                sent += hog.send(b"h" * (1 << 20))
            else:
                stalled += 1
        grown = server.status("VmRSS") - before
        assert sent < 64 << 20, "the server swallowed everything the client sent"
        assert grown < 3 * 1024, f"server RSS grew by {grown} KiB"
        assert round_trip(other) == b"ping"


def test_connect_close_cycles_leak_no_descriptors(start):
    """3,000 connect/close cycles (plain, reset, with data) leave the fd count unchanged."""
    server = start("-q")
    with server.connect() as sock:
        assert round_trip(sock) == b"ping"
        before = server.fds() - 1
    for i in range(3000):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if i % 3 == 1:
            sock.sendall(b"bye")
        if i % 3 == 2:
            reset(sock)
        sock.close()
    for _ in range(100):   # let it finish the last few closes: at most 5 s
        if server.fds() == before:
            break
        time.sleep(0.05)
    assert server.fds() == before
    assert server.proc.poll() is None


def test_logging_quiet_and_max_conns(start):
    """Connects/disconnects are logged at INFO, -q silences them; with --max-conns 2 a
    third client waits in the backlog (not refused) and is served once a slot is free."""
    loud, quiet = start("--max-conns", "2"), start("-q")
    with quiet.connect() as c:
        assert round_trip(c) == b"ping"
    a, b = loud.connect(), loud.connect()
    assert round_trip(a) == b"ping" and round_trip(b) == b"ping"
    with loud.connect() as third:
        third.sendall(b"waiting")
        third.settimeout(0.3)
        try:
            early = third.recv(10)
        except TimeoutError:
            early = None
        assert early is None               # queued, not served and not refused
        a.close()
        third.settimeout(10)
        got = b""
        while len(got) < 7 and (chunk := third.recv(10)):
            got += chunk
        assert got == b"waiting"           # served as soon as a slot was free
        assert round_trip(b) == b"ping"
    b.close()
    assert wait_for(lambda: loud.stderr().count("disconnect 127.0.0.1:") == 3)
    log = loud.stderr()
    assert log.count("echo: connect 127.0.0.1:") == 3
    assert "connect" not in quiet.stderr()
    assert loud.proc.poll() is None and quiet.proc.poll() is None


def test_running_out_of_descriptors_pauses_accepting_but_never_ends_it(tmp_path):
    """With RLIMIT_NOFILE at 24, clients beyond the limit make accept() fail with EMFILE:
    the server logs it, keeps serving the clients it has, and once they leave it
    accepts again, the queued clients and a new one alike."""
    def limit_fds() -> None:   # in the child: hard limit too, so the server cannot raise it
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    server = Server(tmp_path, "-q", preexec_fn=limit_fds)
    clients: list[socket.socket] = []
    try:
        for _ in range(40):   # the kernel completes handshakes for the backlog anyway
            clients.append(server.connect())
        assert wait_for(lambda: "Too many open files" in server.stderr())
        assert round_trip(clients[0]) == b"ping"   # a client it holds is still served
        for sock in clients:
            sock.close()
        clients.clear()
        with server.connect() as late:
            late.settimeout(5)
            assert round_trip(late) == b"ping"
        assert wait_for(lambda: "accepting again" in server.stderr())
        assert server.proc.poll() is None
        assert "Traceback" not in server.stderr()
    finally:
        for sock in clients:
            sock.close()
        server.proc.kill()
        server.proc.wait()
        server.proc.stdout.close()


def test_default_port_is_below_the_ephemeral_range() -> None:
    """`make demo`'s port, and the demos' defaults, lie below the ports the OS hands out to
    outgoing connections (Linux: 32768-60999), so a client left by `make test` cannot hold
    it; the three agree."""
    ports = {name: _default_port(name) for name in ("echo_server", "echo_client")}
    makefile = (DEMOS.parent / "Makefile").read_text()
    ports["Makefile"] = int(re.search(r"^PORT\s*\?=\s*(\d+)\s*$", makefile, re.M).group(1))
    assert len(set(ports.values())) == 1, ports
    low = 32768
    if os.path.exists("/proc/sys/net/ipv4/ip_local_port_range"):
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = min(low, int(f.read().split()[0]))
    assert 1024 <= ports["Makefile"] < low, ports


def _default_port(demo: str) -> int:
    """DEFAULT_PORT of demos/<demo>.py (loading it runs no server: main() is guarded)."""
    spec = importlib.util.spec_from_file_location(f"_{demo}", DEMOS / f"{demo}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DEFAULT_PORT
