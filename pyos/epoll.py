"""The epoll backend of the poller (Linux): O(ready) per poll.

Registrations persist across waits: a task that waits again on the same socket costs no
system call at all.  They are shrunk lazily, when epoll reports an event nobody waits
for, so the kernel never spins on a ready descriptor.  A registration is trusted only
for the same open file object; anything else goes through ``epoll_ctl``, which fails
for a number that was closed and reused (epoll forgets closed files by itself): that is
how stale waits are found.  The waiter tables and their rules are ``Poller``'s, in
poller.py.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import weakref
from typing import Any

from .poller import READ, Poller

__all__ = ["EpollPoller"]

# epoll's event bits (absent from select where there is no epoll, as on macOS)
_IN, _OUT = getattr(select, "EPOLLIN", 1), getattr(select, "EPOLLOUT", 4)
_ERR, _HUP = getattr(select, "EPOLLERR", 8), getattr(select, "EPOLLHUP", 16)


class EpollPoller(Poller):
    """Linux epoll with lazy, persistent, level-triggered registrations."""

    _RD = _IN | _ERR | _HUP  # what wakes a reader: readable, or an error/hang-up to read
    _WR = _OUT | _ERR | _HUP

    def __init__(self) -> None:
        super().__init__()
        self._epoll = select.epoll()
        self._armed: dict[int, int] = {}  # fd -> the events epoll watches on it

    def close(self) -> None:
        self._epoll.close()

    def set_wakeup_fd(self, fd: int) -> None:
        super().set_wakeup_fd(fd)
        self._epoll.register(fd, _IN)   # not in _armed: no waiter ever owns it

    def add(self, fd: int, event: str, task: Any, file: Any = None) -> None:
        """As Poller.add, with a shortcut for what every connection does after each message.

        When the same open file waits again for what epoll already watches and no other
        task waits on it, there is nothing to check and no system call to make.
        """
        if event == READ:
            table, ref = self.readers, self.reading.get(fd)
        else:
            table, ref = self.writers, self.writing.get(fd)
        if ref is not None and ref() is file and fd not in table and file.fileno() == fd:
            table[fd] = task
            return
        super().add(fd, event, task, file)

    def _want(self, fd: int) -> int:
        return (_IN if fd in self.readers else 0) | (_OUT if fd in self.writers else 0)

    def _arm(self, fd: int, file: Any) -> None:
        want = self._want(fd)
        if want & ~self._armed.get(fd, 0) == 0 and self._is_armed_for(fd, file):
            return  # this very file, still open, is watched for this already: no system call
        self._watch(fd, want, file)

    def _is_armed_for(self, fd: int, file: Any) -> bool:
        ref = self.reading.get(fd) or self.writing.get(fd)  # (add() tests the same)
        if ref is None or file is None:
            return False
        return ref() is file and file.fileno() == fd  # the same file, still open

    def _watch(self, fd: int, mask: int, file: Any) -> None:
        """Make epoll watch exactly mask on fd (nothing at all for 0)."""
        if not mask:
            self._drop(fd)
            return
        try:
            if fd in self._armed:
                self._epoll.modify(fd, mask)
            else:
                self._epoll.register(fd, mask)
        except FileNotFoundError:  # closed and reused: epoll forgot the old file
            self._epoll.register(fd, mask)
        except FileExistsError:
            self._epoll.modify(fd, mask)
        except PermissionError:  # EPERM: the file does not support polling at all
            raise ValueError(f"fd {fd} ({file!r}) cannot be watched by epoll: "
                             f"{_unpollable(fd)}") from None
        try:
            ref = weakref.ref(file)
        except TypeError:  # an int, or None: no file to trust, so no fast path next time
            ref = None
        self._armed[fd] = mask
        for watching, bit in ((self.reading, _IN), (self.writing, _OUT)):
            if mask & bit and ref is not None:
                watching[fd] = ref
            else:
                watching.pop(fd, None)

    def _drop(self, fd: int) -> None:
        self.reading.pop(fd, None)
        self.writing.pop(fd, None)
        if self._armed.pop(fd, None) is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:
                # Already closed.  epoll forgot it by itself if that was the file's last
                # descriptor; if not, it still reports it, and poll() renews the epoll.
                pass

    def _alive(self, fd: int) -> bool:
        mask = self._armed.get(fd)
        if mask is None:
            return super()._alive(fd)
        try:  # fails with ENOENT when the file registered under fd was closed
            self._epoll.modify(fd, mask)
        except OSError as exc:
            return exc.errno not in (errno.ENOENT, errno.EBADF)
        return True

    def poll(self, timeout: float | None) -> list[Any]:
        events = self._epoll.poll(-1 if timeout is None else timeout)
        woken: list[Any] = []
        readers, writers, rd, wr = self.readers, self.writers, self._RD, self._WR
        for fd, ev in events:  # the two directions are written out: this runs per event
            idle = False  # an event nobody waits for: stop watching for it
            if ev & rd:
                task = readers.pop(fd, None)
                if task is None:
                    idle = True
                else:
                    woken.append(task)
            if ev & wr:
                task = writers.pop(fd, None)
                if task is None:
                    idle = True
                else:
                    woken.append(task)
            if idle:
                if fd == self.wakeup_fd:   # not a waiter: another thread woke the kernel
                    self._drain_wakeup()
                    continue
                if fd not in self._armed:  # a registration _drop() could not remove
                    self._renew()
                    break                  # (the rest of events is about the old epoll)
                ref = self.reading.get(fd) or self.writing.get(fd)
                self._watch(fd, self._want(fd), ref and ref())
        return woken

    def _renew(self) -> None:
        """Replace the epoll instance by a fresh one watching exactly what is armed.

        epoll keys a registration by open file, and removing it needs the descriptor:
        once a descriptor is closed while its file stays open elsewhere (a ``dup``, a
        forked child), the registration cannot be removed and fires as long as the file
        is ready.  Socket.close() tells the kernel first, so only a close behind the
        kernel's back comes here, and the cost (a system call per armed descriptor) is
        paid once per such close, instead of spinning.
        """
        old, self._epoll = self._epoll, select.epoll()
        old.close()
        if self.wakeup_fd >= 0:
            self._epoll.register(self.wakeup_fd, _IN)
        for fd, mask in list(self._armed.items()):
            try:
                self._epoll.register(fd, mask)
            except OSError:  # closed as well: its waiters are broken
                self.forget(fd)


def _unpollable(fd: int) -> str:
    """Why epoll refused fd, for its error message: what kind of file it really is."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return "it does not support polling"
    if stat.S_ISREG(mode):
        return "it is a regular file: regular files are always ready, so read it directly"
    if stat.S_ISDIR(mode):
        return "it is a directory, which has nothing to wait for"
    if stat.S_ISCHR(mode):
        return ("it is a character device that does not support polling (such as "
                "/dev/null, always ready): read or write it directly")
    if stat.S_ISBLK(mode):
        return "it is a block device, which is always ready: read it directly"
    return "its file does not support polling"
