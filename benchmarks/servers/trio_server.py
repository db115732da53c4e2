"""trio echo server: serve_listeners with a SocketStream per connection (TCP_NODELAY on).

Why trio: structured concurrency with the most checks per operation of the peers; it
shows what those guarantees cost against pyos's leaner kernel.
"""

from __future__ import annotations

import contextlib

import trio
from base import CHUNK, announce, arg_parser, listener


async def handle(stream: trio.SocketStream) -> None:
    """Echo until EOF."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        async with stream:
            while data := await stream.receive_some(CHUNK):
                await stream.send_all(data)


async def serve() -> None:
    """Accept forever on the shared listener."""
    args = arg_parser(__doc__.split("\n")[0]).parse_args()
    raw = listener(args)
    announce(raw)
    await trio.serve_listeners(handle, [trio.SocketListener(trio.socket.from_stdlib_socket(raw))])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve)
