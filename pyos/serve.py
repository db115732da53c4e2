"""serve(): accept connections and run a handler task for each, until cancelled.

Every server written on pyos repeats the same loop, and gets the same corners wrong:
an accept error such as EMFILE (out of descriptors) ends the listener for good, a full
server refuses clients instead of making them wait, and stopping the server leaves
handler tasks running.  ``serve()`` is that loop done once:

* each connection runs ``handler(client, address)`` as a task of its own (a generator
  or coroutine function), whose socket is closed when it ends; a handler that fails is
  logged by the kernel and harms no other connection;
* with ``max_conns``, a full connection table waits for a free slot: the backlog holds
  the new clients meanwhile, as the OS would;
* an accept error that means "out of a resource" is logged and retried after a short
  back-off, never fatal (asyncio and trio do the same); a connection that was aborted
  before it was accepted is skipped;
* when the serving task is cancelled (CancelTask, a timeout), it closes the listener,
  cancels its handlers and waits for them, then lets the Cancelled go on.  If it is
  killed, its handlers are killed too.

This module only yields system calls: it is library code, like sockets.py.
"""

from __future__ import annotations

import errno
import logging
import types
from collections.abc import Callable, Generator
from functools import partial
from typing import Any

from .errors import Cancelled, PyosError, TaskError
from .runtime import current_kernel
from .sockets import Socket
from .syscalls import CancelTask, NewTask, Sleep, WaitTask
from .waits import WaitQueue

__all__ = ["serve"]

log = logging.getLogger("pyos")

#: accept() errors that mean the process or the system ran out of something: wait, retry.
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() errors about one connection that went away before it was accepted: skip it.
ABORTED_ERRORS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})

#: How long to wait before accepting again after a resource error.
BACKOFF = 0.1


@types.coroutine
def serve(listener: Socket, handler: Callable[[Socket, Any], Any],
          max_conns: int | None = None) -> Generator[Any, Any, None]:
    """Accept on listener, running handler(client, address) as a task per connection.

    Runs until cancelled; see the module docstring.  ``yield serve(...)`` in a generator
    task, ``await serve(...)`` in an async one.
    """
    if max_conns is not None and (not isinstance(max_conns, int) or max_conns < 1):
        raise ValueError(f"max_conns must be a positive int or None, not {max_conns!r}")
    handlers: set[int] = set()
    free = WaitQueue(f"a free connection slot ({max_conns} in use)")
    name = getattr(handler, "__name__", "handler")

    kernel = current_kernel()

    def ended(tid: int, client: Socket, _how: BaseException) -> None:   # at_exit hook
        client.close()   # (closed already, unless killed before it ever ran)
        handlers.discard(tid)
        free.wake()

    failing = 0   # the errno accept() keeps failing with, 0 while it works
    try:
        while True:
            while max_conns is not None and len(handlers) >= max_conns:
                yield free.park()
            try:
                client, address = yield listener.accept()
            except OSError as exc:
                if exc.errno in ABORTED_ERRORS:
                    continue
                if exc.errno not in RESOURCE_ERRORS:
                    raise
                if exc.errno != failing:   # once per spell, not once per retry
                    log.error("cannot accept on %r: %s; retrying every %.1fs "
                              "(%d connections open)", listener, exc, BACKOFF, len(handlers))
                failing = exc.errno
                yield Sleep(BACKOFF)
                continue
            if failing:
                log.warning("accepting again on %r (%d connections open)",
                            listener, len(handlers))
                failing = 0
            tid = yield NewTask(_connection(handler, client, address),
                                name=f"{name} {_peer(address)}")
            # (a NewTask that ended this task's turn may have let the handler end already)
            if kernel.at_exit(tid, partial(ended, tid, client)):
                handlers.add(tid)
            else:
                client.close()
    except GeneratorExit:   # killed: nothing may block now, so the handlers are killed too
        listener.close()
        for tid in list(handlers) if kernel is not None else ():
            kernel.kill(tid)
        raise
    except BaseException:   # cancelled (or accept failed for good): stop the handlers
        listener.close()
        tids = list(handlers)
        for tid in tids:
            yield CancelTask(tid)
        for tid in tids:
            while True:
                try:
                    yield WaitTask(tid)
                except (TaskError, PyosError):
                    pass   # cancelled, failed (and logged), or already collected: ended
                except Cancelled:
                    continue   # cancelled again while stopping: stopping already
                break
        raise


def _connection(handler: Callable[[Socket, Any], Any], client: Socket,
                address: Any) -> Generator[Any, Any, Any]:
    """One connection's task: the handler, then the socket closed.  (serve's exit hook
    frees the slot, and closes the socket of a task killed before it ever ran.)"""
    with client:
        return (yield handler(client, address))


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
