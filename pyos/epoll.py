"""The epoll backend of the poller (Linux): O(ready) per poll.

Registrations persist across waits: a task that waits again on the same socket costs no
system call at all.  They are shrunk lazily, when epoll reports an event nobody waits
for, so the kernel never spins on a ready descriptor.  A registration is trusted only
for the same open file object; anything else goes through ``epoll_ctl``, which fails
for a number that was closed and reused (epoll forgets closed files by itself): that is
how stale waits are found.  The wait that made a registration holds it: its ``armed``
is this poller, which the run loop trusts with one attribute test (and a fileno() call,
for a close behind the kernel's back), so every change of the registration disarms it.
The waiter tables and their rules are ``Poller``'s, in poller.py.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import weakref
from typing import Any

from .poller import READ, WRITE, Poller, _closed

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
        # fd -> a weak reference to the wait that holds the registration, one table per
        # direction: the wait whose ``armed`` is this poller, so that the run loop trusts
        # it with one attribute test, and that this poller disarms when the registration
        # changes.  Weak, so that a socket its task dropped without closing is still freed,
        # and closed.  A wait on a bare int is never armed: it has no file to check.
        self._reading: dict[int, weakref.ref[Any]] = {}
        self._writing: dict[int, weakref.ref[Any]] = {}

    def close(self) -> None:
        for fd in list(self._armed):   # no wait may stay armed by a poller that is gone
            self._own(fd, None, None)
        self._epoll.close()

    def set_wakeup_fd(self, fd: int) -> None:
        super().set_wakeup_fd(fd)
        self._epoll.register(fd, _IN)   # not in _armed: no waiter ever owns it

    def add(self, task: Any, wait: Any) -> None:
        """As Poller.add, with a shortcut for what every connection does after each message.

        When the wait that holds the registration waits again, its file still open under
        the same number, and no other task waits there, there is nothing to check and no
        system call to make (the run loop takes the same shortcut for a ReadWait itself).
        """
        fd = wait.fd
        table = self.readers if wait.event == READ else self.writers
        if wait.armed is self and fd not in table and not _closed(wait.file, fd):
            table[fd] = task
            return
        super().add(task, wait)

    def _want(self, fd: int) -> int:
        return (_IN if fd in self.readers else 0) | (_OUT if fd in self.writers else 0)

    def _arm(self, fd: int, wait: Any) -> None:
        want = self._want(fd)
        if want & ~self._armed.get(fd, 0) == 0 and self._is_armed_for(fd, wait.file):
            return  # this very file, still open, is watched for this already: no system call
        self._watch(fd, want, wait)

    def _holder(self, fd: int) -> Any:
        """The wait that holds fd's registration, either direction; None if none lives."""
        ref = self._reading.get(fd) or self._writing.get(fd)
        return ref() if ref is not None else None

    def _is_armed_for(self, fd: int, file: Any) -> bool:
        holder = self._holder(fd)
        if holder is None or holder.file is not file:
            return False
        return file.fileno() == fd  # the same file, still open

    def _watch(self, fd: int, mask: int, wait: Any) -> None:
        """Make epoll watch exactly mask on fd, for wait's file (nothing at all for 0).

        wait is None when no live wait holds the registration: then none will.
        """
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
            what = fd if wait is None else wait.file
            raise ValueError(f"fd {fd} ({what!r}) cannot be watched by epoll: "
                             f"{_unpollable(fd)}") from None
        self._armed[fd] = mask
        self._own(fd, mask, wait)

    def _own(self, fd: int, mask: int | None, wait: Any) -> None:
        """Record which waits hold fd's registration (mask, for wait's file) and arm them.

        In each direction mask watches, wait holds it if it is that direction's wait, and
        a wait already there keeps it if it is for the same file; every other wait there
        is disarmed (mask None: all of them).
        """
        file = None if wait is None or isinstance(wait.file, int) else wait.file
        for holders, bit, event in ((self._reading, _IN, READ), (self._writing, _OUT, WRITE)):
            ref = holders.get(fd)
            old = ref() if ref is not None else None
            new = None
            if mask is not None and mask & bit and file is not None:
                if wait.event == event:
                    new = wait
                elif old is not None and old.file is file:
                    new = old
            if new is old and new is not None:
                continue                  # it holds on
            if old is not None and old.armed is self:
                old.armed = None          # it no longer holds what the run loop trusts
            if new is None:
                holders.pop(fd, None)
            else:
                holders[fd] = weakref.ref(new)
                new.armed = self

    def _drop(self, fd: int) -> None:
        self._own(fd, None, None)
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
                self._watch(fd, self._want(fd), self._holder(fd))
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
