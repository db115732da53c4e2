"""curio echo server: one task per connection, like pyos (curio descends from pyos).

Why curio: it is Beazley's own successor to pyos, the closest peer in design (tasks are
coroutines that trap into a kernel).  Uses curio's defaults (no TCP_NODELAY).
"""

from __future__ import annotations

import contextlib

import curio
from base import CHUNK, announce, arg_parser, listener
from curio.io import Socket


async def handle(client: Socket) -> None:
    """Echo until EOF, then close."""
    async with client:
        with contextlib.suppress(ConnectionError):
            while data := await client.recv(CHUNK):
                await client.sendall(data)


async def serve(sock: Socket) -> None:
    """Accept forever, a daemon task per client."""
    async with sock:
        while True:
            client, _address = await sock.accept()
            await curio.spawn(handle, client, daemon=True)


def main() -> None:
    args = arg_parser(__doc__.split("\n")[0]).parse_args()
    raw = listener(args)
    announce(raw)
    curio.run(serve, Socket(raw))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
