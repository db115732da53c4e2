"""asyncio echo servers: streams (StreamReader/Writer) or a Protocol, on asyncio or uvloop.

    python benchmarks/servers/asyncio_server.py --api streams|protocol --loop asyncio|uvloop
                                                [--timeout SECONDS]

Why both APIs: streams are what most asyncio code is written against (a coroutine per
connection, like a pyos task); a Protocol is asyncio's fastest path (callbacks, no
coroutine per message).  On uvloop the Protocol server is the fastest Python-level echo
server there is, which makes it the ceiling the targets are measured against.

``--timeout`` (streams only) puts every read under ``asyncio.timeout()``, a server's idle
timeout that never fires while the client talks: the comparison for what pyos's
``timeout_after`` on every recv costs (benchmarks/servers/pyos_timeout_server.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from base import BACKLOG, CHUNK, announce, arg_parser, listener


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until EOF, waiting for the buffer to drain after every write."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    writer.close()


def timed_handler(seconds: float) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                Awaitable[None]]:
    """handle() with every read under ``asyncio.timeout(seconds)``; an idle client is dropped.

    The idiom asyncio's documentation gives for a deadline on one await (Python 3.11+).
    """
    async def handle_timed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            while True:
                async with asyncio.timeout(seconds):
                    data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    return handle_timed


class Echo(asyncio.Protocol):
    """Writes back whatever arrives; the transport closes itself on EOF."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def serve(args: argparse.Namespace) -> None:
    """Listen with the chosen API, forever."""
    loop = asyncio.get_running_loop()
    sock = listener(args)
    if args.api == "streams":
        handler = handle if args.timeout is None else timed_handler(args.timeout)
        server = await asyncio.start_server(handler, sock=sock, backlog=BACKLOG)
    else:
        server = await loop.create_server(Echo, sock=sock, backlog=BACKLOG)
    announce(sock)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = arg_parser(__doc__.split("\n")[0])
    parser.add_argument("--api", choices=["streams", "protocol"], default="protocol")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--timeout", type=float, help="streams: a deadline on every read")
    args = parser.parse_args()
    if args.timeout is not None and args.api != "streams":
        parser.error("--timeout is for --api streams")
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args))
    else:
        asyncio.run(serve(args))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
