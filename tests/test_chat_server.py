"""demos/chat_server.py as a user runs it: a subprocess on port 0, real sockets on loopback.

The protocol (broadcast, /nick, /who, /quit, announcements), the limits (an over-long
line, a slow reader, an idle client), shutting down on SIGTERM and SIGINT, a thousand
clients, and nc (or, where nc is not installed, a plain socket client in a subprocess).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import select
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from chat_peers import Peer, join
from helpers import DEMOS, wait_for

USAGE = "* usage: /nick NAME, 1-16 letters, digits, _ . or - (not first)"


@pytest.fixture
def chat(start):
    """chat(*args): a chat server started with these options."""
    return lambda *args: start(*args, demo="chat_server.py")


def test_broadcast_reaches_everyone_else_but_not_the_sender(chat):
    a, b, c = join(chat(), 3)
    a.say("hello, all", "", "a tab\tstays, \x1b[2J an escape does not\r")
    for peer in (b, c):
        peer.expect(f"{a.nick}: hello, all", f"{a.nick}: a tab\tstays, ?[2J an escape does not")
    a.say("/who")   # the next line a reads is the answer: none of its own lines came back
    a.expect(f"* 3 here: {a.nick}, {b.nick}, {c.nick}")
    assert b.quiet() and c.quiet()   # the empty line was nobody's business


def test_nick_is_validated_unique_and_announced(chat):
    a, b = join(chat(), 2)
    a.say("/nick alice")
    a.expect("* you are now alice")
    b.expect(f"* {a.nick} is now alice")
    b.say("/nick ALICE", "/nick", "/nick -dash", "/nick " + "x" * 17, "/nick a b")
    b.expect("* ALICE is taken", USAGE, USAGE, USAGE, USAGE)
    a.say("/nick alice", "/nick Alice")   # one's own nick in other letters is no clash
    a.expect("* you are alice already", "* you are now Alice")
    b.expect("* alice is now Alice")
    b.say("/NICK bob.2", "hi")
    b.expect("* you are now bob.2")
    a.expect(f"* {b.nick} is now bob.2", "bob.2: hi")


def test_who_quit_join_and_leave(chat):
    server = chat()
    a, b = join(server, 2)
    a.say("/nick zed")
    b.expect(f"* {a.nick} is now zed")
    c = Peer(server)
    assert c.nick == "guest3"
    a.expect("* you are now zed", "* guest3 has joined")
    b.expect("* guest3 has joined")
    c.say("/WHO", "/frob x")
    c.expect(f"* 3 here: {b.nick}, guest3, zed", "* unknown command /frob; try /nick NAME, "
             "/who, /quit")
    a.say("/quit", "never sent")
    assert a.until_eof() == ["* goodbye"]
    b.expect("* zed has left")
    c.expect("* zed has left")
    c.sock.sendall(b"no newline, then end of stream")
    c.sock.shutdown(socket.SHUT_WR)     # what nc does at the end of its input
    assert c.until_eof() == ["* goodbye"]
    b.expect("guest3: no newline, then end of stream", "* guest3 has left")
    b.say("/who")
    b.expect(f"* 1 here: {b.nick}")
    assert server.proc.poll() is None


def test_an_over_long_line_is_refused_and_skipped_to_its_end(chat):
    """With --max-line 64 a line holds 63 bytes and its newline; a longer one is refused,
    however it arrives, and none of it ever reaches anyone."""
    a, b = join(chat("--max-line", "64"), 2)
    refused = "* line too long (over 64 bytes); ignored"
    a.say("z" * 63, "z" * 64)
    b.expect(f"{a.nick}: " + "z" * 63)
    a.expect(refused)
    a.sock.sendall(b"y" * 100)          # the end of this line arrives in a later read
    time.sleep(0.1)
    a.sock.sendall(b"y" * 100 + b"\nafter\n")
    a.expect(refused)
    a.sock.sendall(b"w" * (1 << 20) + b"\n")   # a megabyte, read 64 bytes at a time
    a.expect(refused, limit=10)
    a.say("end")
    b.expect(f"{a.nick}: after", f"{a.nick}: end")


def test_a_slow_reader_is_dropped_and_costs_no_memory(chat):
    """A client that never reads while 24 MB are said: it is dropped (told so if it reads
    soon enough), the server's RSS stays within 8 MiB of where it was (it grows by
    about 2 with 2,048 lines queued for the slow one, by 19 with no bound), and the client
    still reading gets every line, promptly, throughout."""
    server = chat()
    slow = Peer(server, rcvbuf=4096)
    talker, listener = Peer(server), Peer(server)
    slow.expect(f"* {talker.nick} has joined", f"* {listener.nick} has joined")
    talker.expect(f"* {listener.nick} has joined")
    heard: list[float] = []   # when each of talker's lines reached listener

    def listen() -> None:
        for _ in range(30_000):
            line = listener.line(10)
            if line is None or line.startswith(f"{talker.nick}: ping"):
                heard.append(time.monotonic())
                return
            if line.startswith(f"{talker.nick}: "):
                heard.append(time.monotonic())

    reader = threading.Thread(target=listen)
    reader.start()
    before = peak = server.status("VmRSS")
    batch = "".join(f"{talker.nick}-{i:04d}-" + "m" * 990 + "\n" for i in range(100))
    try:
        for _ in range(240):                  # 240 x 100 lines of 1,000 bytes: 24 MB
            talker.sock.sendall(batch.encode())
            peak = max(peak, server.status("VmRSS"))
        assert wait_for(lambda: "dropped: 2048 lines behind" in server.stderr())
        drained = slow.until_eof(limit=10)    # it reads at last: what was sent, then EOF
        sent = time.monotonic()
        talker.say("ping")
    finally:
        reader.join(15)
    assert peak - before < 8 * 1024, f"server RSS grew by {peak - before} KiB"
    assert len(heard) == 24_001, f"listener heard {len(heard)} of 24,001 lines"
    assert max(b - a for a, b in itertools.pairwise(heard)) < 1.0   # never held up
    assert heard[-1] - sent < 1.0
    assert drained and drained[-1] == "* you are too slow; goodbye"
    assert 0 < sum(line.startswith(f"{talker.nick}: ") for line in drained) < 24_000
    talker.say("/who")
    for _ in range(5):                        # its leaving was announced first
        if (line := talker.line()).startswith("* 2 here"):
            break
    assert line == f"* 2 here: {talker.nick}, {listener.nick}"
    assert "Traceback" not in server.stderr()


def test_an_idle_client_is_told_and_dropped(chat):
    """--idle 0.5: a client silent that long is told and dropped; one that talks stays."""
    server = chat("--idle", "0.5")
    busy, idle = join(server, 2)
    joined = time.monotonic()

    def talk() -> None:   # a line every 0.1 s for a second
        for _ in range(10):
            busy.say("tick")
            time.sleep(0.1)

    talker = threading.Thread(target=talk)
    talker.start()
    try:
        lines = idle.until_eof()
        dropped = time.monotonic() - joined
    finally:
        talker.join(5)
    assert lines[-1] == "* idle for 0.5 s; goodbye"
    assert set(lines[:-1]) == {f"{busy.nick}: tick"}
    # (joined is read once the client has its welcome; the server's deadline started as
    # it sent it, a few milliseconds earlier on a loaded machine)
    assert 0.45 <= dropped < 1.5
    busy.say("/who")
    busy.expect(f"* {idle.nick} has left", f"* 1 here: {busy.nick}")
    assert "idle for 0.5 s; goodbye" in server.stderr()


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_says_goodbye_to_every_client_and_exits_0(chat, signo):
    server = chat()
    peers = join(server, 5)
    peers[0].say("/nick alice")
    for peer in peers[1:]:
        peer.expect(f"* {peers[0].nick} is now alice")
    peers[0].expect("* you are now alice")
    peers[1].sock.sendall(b"half a line")  # its session is in the middle of a read
    began = time.monotonic()
    server.proc.send_signal(signo)
    for peer in peers:
        assert peer.until_eof() == ["* server shutting down"]
    assert server.proc.wait(5) == 0
    assert time.monotonic() - began < 2.0
    err = server.stderr()
    assert "Traceback" not in err
    assert f"{signo.name}: saying goodbye to every client (5)" in err


def test_a_client_that_does_not_read_holds_up_shutdown_a_second_at_most(chat):
    """Its writer is stuck with lines still queued (--queue is huge, so it is not dropped):
    the others still get their goodbye, and the server exits 0 a second later."""
    server = chat("--queue", "1000000")
    stuck = Peer(server, rcvbuf=4096)
    talker = Peer(server)
    stuck.expect(f"* {talker.nick} has joined")
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:   # more than the socket can ever hold
        lines = 2 * int(f.read().split()[2]) // 1000 + 2000
    talker.sock.sendall(("s" * 999 + "\n").encode() * lines)
    talker.say("/who")
    talker.expect(f"* 2 here: {stuck.nick}, {talker.nick}", limit=10)   # all were read
    began = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert talker.until_eof() == ["* server shutting down"]
    assert server.proc.wait(5) == 0
    assert 0.9 <= time.monotonic() - began < 2.5
    assert "Traceback" not in server.stderr()


def test_a_thousand_clients(chat):
    """1,000 clients join, then each says one line: every one of a sample hears all 999
    others, nobody is dropped, and it all takes a few seconds."""
    server = chat("-q")
    began = time.monotonic()
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10)
             for _ in range(1000)]
    got = [bytearray() for _ in socks]
    sample = range(0, 1000, 50)

    def read_until(done) -> None:   # read every client until done(), 10 s at most
        deadline = time.monotonic() + 10
        while not done() and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                got[key.data] += key.fileobj.recv(1 << 16)

    with selectors.DefaultSelector() as sel:
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, i)
        read_until(lambda: all(b"* welcome" in data for data in got))   # all are in
        joined = time.monotonic() - began
        for i, sock in enumerate(socks):
            sock.sendall(b"hello from %d\n" % i)
        read_until(lambda: all(got[i].count(b": hello from ") == 999 for i in sample))
    elapsed = time.monotonic() - began
    for sock in socks:
        sock.close()
    assert all(b"* welcome" in data for data in got)
    for i in sample:
        said = set(re.findall(rb": hello from (\d+)\n", bytes(got[i])))
        assert said == {b"%d" % j for j in range(1000) if j != i}, f"client {i}"
    assert "dropped" not in server.stderr()
    assert elapsed < 10.0, f"took {elapsed:.1f} s ({joined:.1f} s to join)"


NC_STAND_IN = """\
import socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def send():
    for line in sys.stdin.buffer:
        sock.sendall(line)
threading.Thread(target=send, daemon=True).start()
while data := sock.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def test_nc_can_talk_to_it(chat):
    """nc (or ncat, or netcat) if installed; else a plain socket client in a subprocess,
    which reads its input and prints what comes back as nc does."""
    server = chat()
    other = Peer(server)
    nc = next(filter(None, map(shutil.which, ("nc", "ncat", "netcat"))), None)
    cmd = [nc] if nc else [sys.executable, "-c", NC_STAND_IN]
    proc = subprocess.Popen([*cmd, "127.0.0.1", str(server.port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        proc.stdin.write(b"/nick nc\nhello from nc\n/quit\n")
        proc.stdin.flush()
        out = b""
        deadline = time.monotonic() + 10
        while b"* goodbye\n" not in out and (left := deadline - time.monotonic()) > 0:
            if select.select([proc.stdout], [], [], left)[0]:
                if not (chunk := os.read(proc.stdout.fileno(), 65536)):
                    break
                out += chunk
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    lines = out.decode().splitlines()
    assert lines[1:] == ["* you are now nc", "* goodbye"]
    other.expect("* guest2 has joined", "* guest2 is now nc", "nc: hello from nc",
                 "* nc has left")


def test_default_port_is_the_makefiles_and_below_the_ephemeral_range():
    spec = importlib.util.spec_from_file_location("_chat_server", DEMOS / "chat_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    makefile = (DEMOS.parent / "Makefile").read_text()
    port = int(re.search(r"^CHAT_PORT\s*\?=\s*(\d+)\s*$", makefile, re.M).group(1))
    assert port == module.DEFAULT_PORT
    assert 1024 <= port < 32768
