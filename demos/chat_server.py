"""A chat server on pyos: lines in, lines out to everyone else, one task per client.

    python demos/chat_server.py [--host 127.0.0.1] [--port 25001] [--idle SECONDS] [-q]
                                [--max-conns N] [--queue LINES] [--max-line BYTES]
                                [--monitor [ADDRESS]]

Talk to it with ``nc 127.0.0.1 25001``: a line is sent to everyone else, ``/nick NAME``
renames you, ``/who`` lists who is here, ``/quit`` leaves.  SIGTERM or Ctrl-C says
"* server shutting down" to every client, closes them and exits 0.  ``--monitor`` opens
the monitor console (``python -m pyos.monitor``) on the default socket, or at ADDRESS.

The design, as it would be in asyncio or trio:

* ``pyos.serve`` runs ``Room.session`` as a task per client: it reads lines with
  ``readuntil`` and a limit, so a line too long is refused (and skipped to its end)
  without holding more than ``--max-line`` bytes of it, and never ends the session.
* Nothing a client says is written to another client's socket by its task: it goes into
  each recipient's bounded outbox (a ``pyos.Queue``) with ``put_nowait``, and a writer
  task per client empties that outbox into its socket.  A client that does not read
  cannot block the others, and when its outbox is full it is too slow: it is told (if
  its socket takes it) and dropped, so it can never grow the server's memory.
* ``--idle``: a client that sends no line for that long is told and dropped.
* The main task waits for SIGINT or SIGTERM with ``SignalWatch``, then cancels the
  server: serve() cancels every session, and each one flushes its outbox, says goodbye
  and closes, all within ``GOODBYE`` seconds.
"""

from __future__ import annotations

import argparse
import logging
import re
import resource
import signal
import sys
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

import pyos
from pyos import Cancelled, CancelTask, Queue, TaskGroup, current_tid, timeout_after
from pyos.monitor.address import parse_address
from pyos.runtime import current_kernel

log = logging.getLogger("chat")
DEFAULT_PORT = 25001   # below Linux's ephemeral ports (32768-60999), next to the echo demo's
GOODBYE = 1.0          # seconds a leaving client gets to take what is queued and the farewell
BATCH = 256            # lines one write of the writer task may gather
NICK = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}")
HELP = "/nick NAME, /who, /quit"
SHUTTING_DOWN = "* server shutting down"
TOO_SLOW = "* you are too slow; goodbye"
GOODBYE_LINE = "* goodbye"
# Control characters (a line's own \r too) would let one client drive the others' terminals.
UNPRINTABLE = {c: "?" for c in [*range(32), *range(127, 160)] if c != 9}


class Client:
    """One connection: its socket, its nick and its outbox, and why it is being dropped."""

    def __init__(self, sock: pyos.Socket, address: tuple, queue: int) -> None:
        self.sock = sock
        self.peer = f"{address[0]}:{address[1]}"
        self.tid = current_tid()           # the session task, which owns the connection
        self.nick = ""
        self.outbox = Queue(queue, name=f"outbox {self.peer}")
        self.reason: str | None = None     # the farewell, once the server drops it
        self.midline = False               # the writer stopped inside a line

    def offer(self, line: bytes) -> bool:
        """Queue line for this client without waiting: False if its outbox is full."""
        try:
            self.outbox.put_nowait(line)
        except pyos.QueueFull:
            return False
        except pyos.QueueShutDown:
            pass                           # it is on its way out: nothing more for it
        return True

    async def tell(self, text: str) -> None:
        if not self.offer(f"{text}\n".encode()):
            await self.drop_slow()

    async def drop_slow(self) -> None:
        """Its outbox is full: the backlog goes at once, and its session is cancelled."""
        if self.reason is None:
            log.warning("%s (%s) dropped: %d lines behind", self.peer, self.nick,
                        self.outbox.qsize())
            self.reason = TOO_SLOW
            self.outbox.shutdown(immediate=True)
            if self.tid != current_tid():  # (its own session checks reason after each line)
                await CancelTask(self.tid)

    async def pump(self) -> None:
        """The writer task: send queued lines, all that wait in one write, until shutdown."""
        try:
            async for line in self.outbox:
                batch = [line]
                while len(batch) < BATCH and not self.outbox.empty():
                    batch.append(self.outbox.get_nowait())
                self.midline = True
                await self.sock.write(b"".join(batch))
                self.midline = False
        except OSError as exc:             # the client went away: its session will see it
            log.debug("%s: cannot write: %s", self.peer, exc)

    async def finish(self, farewell: str | None, writer: TaskGroup) -> None:
        """Send what is queued, then the farewell, then EOF: GOODBYE seconds at most."""
        if self.reason is not None or farewell is None:
            writer.cancel()                # nothing more to send, or no way to send it
        self.outbox.shutdown()             # the writer sends what is left, then returns
        async with pyos.ignore_after(GOODBYE):  # a client that does not read is not waited for
            await writer.join()
            if farewell is not None:
                cut = "\n" if self.midline else ""   # end the line the writer left half sent
                try:
                    await self.sock.write(f"{cut}{farewell}\n".encode())
                    self.sock.shutdown()
                except OSError:
                    pass


async def read_line(sock: pyos.Socket, limit: int, idle: float | None) -> bytes | None:
    """The next line (b"" at end of stream), or None for one longer than limit.

    A line too long is read and dropped to its end, limit bytes at a time: readuntil
    leaves the buffer as it was when it raises LimitOverrun, so the first limit bytes
    are surely not a newline.  ``idle`` bounds each wait for the client (TaskTimeout).
    """
    try:
        return await timeout_after(idle, sock.readuntil(b"\n", limit))
    except pyos.IncompleteRead as exc:
        return exc.partial                 # the last line had no newline; b"" at EOF
    except pyos.LimitOverrun:
        pass
    while True:
        await sock.readexactly(limit)      # in the buffer already: this never waits
        try:
            await timeout_after(idle, sock.readuntil(b"\n", limit))
            return None
        except pyos.IncompleteRead:
            return None
        except pyos.LimitOverrun:
            continue


class Room:
    """Everyone connected, by nick; sessions, broadcasts and commands."""

    def __init__(self, idle: float | None, queue: int, max_line: int) -> None:
        self.idle, self.queue, self.max_line = idle, queue, max_line
        self.clients: dict[str, Client] = {}   # casefolded nick -> client, in join order
        self.closing = False                    # shutting down: no more announcements
        self._guests = count(1)

    def __len__(self) -> int:
        return len(self.clients)

    async def broadcast(self, text: str, sender: Client | None = None) -> None:
        """Queue text for everyone but sender; drop those whose outbox is full."""
        if self.closing:
            return
        line = f"{text}\n".encode()            # one bytes object shared by every outbox
        slow = [c for c in self.clients.values() if c is not sender and not c.offer(line)]
        for client in slow:
            await client.drop_slow()

    async def session(self, sock: pyos.Socket, address: tuple) -> None:
        """One client's task (pyos.serve closes its socket when it ends)."""
        client = Client(sock, address, self.queue)
        writer = TaskGroup(f"writer {client.peer}")   # killed with this task, if it is
        await writer.spawn(client.pump(), name=f"writer {client.peer}")
        try:
            await self.enter(client)
            farewell = await self.converse(client)
        except Cancelled:       # the server is stopping, or another task dropped the client
            await self.part(client, client.reason or SHUTTING_DOWN, writer)
            raise
        except BaseException:   # killed (nothing may wait now) or a bug: just leave
            self.clients.pop(client.nick.casefold(), None)
            raise
        await self.part(client, farewell, writer)

    async def enter(self, client: Client) -> None:
        client.nick = next(n for i in self._guests if (n := f"guest{i}") not in self.clients)
        self.clients[client.nick] = client
        log.info("%s joined as %s (%d here)", client.peer, client.nick, len(self))
        await client.tell(f"* welcome, {client.nick}: {len(self)} here now; {HELP}")
        await self.broadcast(f"* {client.nick} has joined", client)

    async def part(self, client: Client, farewell: str | None, writer: TaskGroup) -> None:
        self.clients.pop(client.nick.casefold(), None)
        log.info("%s (%s) left: %s", client.peer, client.nick, farewell or "connection lost")
        await self.broadcast(f"* {client.nick} has left", client)
        await client.finish(farewell, writer)

    async def converse(self, client: Client) -> str | None:
        """Read and act on lines until the client leaves; return the farewell to send."""
        while client.reason is None:
            try:
                line = await read_line(client.sock, self.max_line, self.idle)
            except pyos.TaskTimeout:
                return f"* idle for {self.idle:g} s; goodbye"
            except ConnectionError:
                return None
            if line is None:
                await client.tell(f"* line too long (over {self.max_line} bytes); ignored")
                continue
            if not line:
                return GOODBYE_LINE            # end of stream: it may still read, as nc does
            text = line.decode(errors="replace").rstrip("\r\n").translate(UNPRINTABLE)
            if text.startswith("/"):
                if await self.command(client, *text.split(None, 1)):
                    return GOODBYE_LINE
            elif text:
                await self.broadcast(f"{client.nick}: {text}", client)
        return client.reason

    async def command(self, client: Client, name: str, arg: str = "") -> bool:
        """Carry out one /command; True for /quit."""
        name, arg = name.lower(), arg.strip()
        if name == "/quit":
            return True
        if name == "/who":
            nicks = sorted((c.nick for c in self.clients.values()), key=str.casefold)
            await client.tell(f"* {len(nicks)} here: {', '.join(nicks)}")
        elif name == "/nick":
            await self.rename(client, arg)
        else:
            await client.tell(f"* unknown command {name}; try {HELP}")
        return False

    async def rename(self, client: Client, nick: str) -> None:
        if not NICK.fullmatch(nick):
            await client.tell("* usage: /nick NAME, 1-16 letters, digits, _ . or - "
                              "(not first)")
        elif nick == client.nick:
            await client.tell(f"* you are {nick} already")
        elif self.clients.get(nick.casefold(), client) is not client:
            await client.tell(f"* {nick} is taken")
        else:
            old = client.nick
            del self.clients[old.casefold()]
            client.nick = nick
            self.clients[nick.casefold()] = client
            log.info("%s: %s is now %s", client.peer, old, nick)
            await client.tell(f"* you are now {nick}")
            await self.broadcast(f"* {old} is now {nick}", client)


async def chat(listener: pyos.Socket, room: Room, max_conns: int) -> None:
    """The main task: serve until SIGINT or SIGTERM, then stop the server and its clients.

    The server runs in a task group, so if it ever failed, this task would be cancelled
    and the group would raise its error instead of leaving us waiting for a signal.
    """
    current_kernel().dump_on_signal(signal.SIGUSR1)   # kill -USR1: what each task does
    async with pyos.SignalWatch(signal.SIGINT, signal.SIGTERM) as signals:
        host, port = listener.getsockname()[:2]
        print(f"chat server listening on {host}:{port}", flush=True)  # signals are ours now
        async with TaskGroup("server") as server:
            await server.spawn(pyos.serve(listener, room.session, max_conns), name="listener")
            signo = await signals.get()
            log.warning("%s: saying goodbye to every client (%d)", signo.name, len(room))
            room.closing = True
            server.cancel()     # serve() cancels every session and waits for them


def raise_fd_limit() -> None:
    """Allow as many descriptors as the hard limit does: one per client."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument("--idle", type=float, default=300.0, metavar="SECONDS",
                        help="drop a client silent this long (0: never)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only trouble")
    parser.add_argument("--max-conns", type=int, default=10_000,
                        help="concurrent clients; more wait for a free slot")
    parser.add_argument("--queue", type=int, default=2048, metavar="LINES",
                        help="lines waiting for a client before it is too slow")
    parser.add_argument("--max-line", type=int, default=1024, metavar="BYTES",
                        help="the longest line a client may send, newline included")
    parser.add_argument("--poller", choices=["epoll", "select"], default=None)
    parser.add_argument("--monitor", nargs="?", const=True, default=None, metavar="ADDRESS",
                        help="open the monitor console: unix:PATH, tcp:127.0.0.1:PORT, "
                             "or nothing for the default socket")
    args = parser.parse_args(argv)
    if args.idle < 0 or args.queue < 1 or args.max_line < 1:
        parser.error("--idle must be >= 0, --queue and --max-line >= 1")
    if args.monitor is not None:
        try:
            parse_address(args.monitor)        # loopback only: refused here, before binding
        except ValueError as exc:
            parser.exit(2, f"cannot open the monitor console: {exc}\n")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s")
    for signum in (signal.SIGINT, signal.SIGTERM):  # before the watch, and even if ignored
        signal.signal(signum, signal.default_int_handler)
    raise_fd_limit()
    try:
        listener = pyos.listen(args.host, args.port)
    except OSError as exc:
        parser.exit(1, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    room = Room(args.idle or None, args.queue, args.max_line)
    with listener:
        try:   # (a failure of the server itself is raised here: a traceback and status 1)
            pyos.run(chat(listener, room, args.max_conns), poller=args.poller,
                     monitor=args.monitor)
        except KeyboardInterrupt:  # a signal before the watch began: no client to greet
            log.warning("interrupted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
