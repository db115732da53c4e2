"""Which task waits on which descriptor, and which of them the OS says are ready.

One small interface, ``Poller``, keeps the waiter tables and the rules every backend
shares: one reader and one writer per descriptor, a second one is an error; a waiter can
be cancelled; a closed descriptor's waiters are reported as broken rather than left to
hang.  Each backend is a short subclass that only talks to the OS:

* ``SelectPoller``: ``select.select``, the classic, O(n) per poll, descriptors below
  FD_SETSIZE only.  It remembers each descriptor's identity (device, inode), so a
  descriptor number that was closed and reused never wakes the old waiter.
* ``EpollPoller`` (in epoll.py): Linux epoll, O(ready) per poll, with registrations
  that persist across waits.

The kernel calls ``add``, ``cancel``, ``forget``, ``poll`` and ``audit``; broken waiters
(descriptor closed under them) collect in ``broken`` for the kernel to fail with EBADF.
``set_wakeup_fd`` names the kernel's self-pipe (wakeup.py): always watched, never a
waiter, drained whenever it is ready, so another thread can wake a blocked poll.
"""

from __future__ import annotations

import errno
import os
import select
from typing import Any

from .errors import ResourceBusy

__all__ = ["READ", "WRITE", "Poller", "SelectPoller", "make_poller"]

READ, WRITE = "read", "write"


class Poller:
    """The waiter tables: descriptor -> task, one table per direction."""

    def __init__(self) -> None:
        self.readers: dict[int, Any] = {}
        self.writers: dict[int, Any] = {}
        self.broken: list[Any] = []  # waiters whose descriptor was closed under them
        self.wakeup_fd = -1          # the kernel's self-pipe: see set_wakeup_fd

    def __len__(self) -> int:
        return len(self.readers) + len(self.writers)

    def add(self, task: Any, wait: Any) -> None:
        """Make task wait until wait.fd is ready for wait.event (READ or WRITE).

        wait is an I/O wait (syscalls.py): wait.file is what the descriptor was taken
        from, the descriptor itself if nothing else.
        """
        fd, event, file = wait.fd, wait.event, wait.file
        if _closed(file, fd):  # its number may be another file's now: never watch that
            raise OSError(errno.EBADF, f"cannot wait to {event} {file!r}: closed (fd {fd})")
        table = self.readers if event == READ else self.writers
        if fd in self.readers or fd in self.writers:
            if not self._is_armed_for(fd, file) and not self._alive(fd):
                self.forget(fd)  # closed and the number reused: those waits are over
            elif fd in table:
                raise ResourceBusy(
                    f"{task!r} cannot wait to {event} fd {fd}: {table[fd]!r} is already waiting"
                )
        table[fd] = task
        try:
            self._arm(fd, wait)
        except BaseException:
            del table[fd]  # the OS refused: leave no waiter behind that nothing will wake
            raise

    def cancel(self, fd: int, event: str, task: Any) -> None:
        """Forget task's wait for (fd, event): it is killed, cancelled or scheduled."""
        table = self.readers if event == READ else self.writers
        if table.get(fd) is task:  # not a broken waiter's number, now another task's
            del table[fd]
            self._disarm(fd)
        elif task in self.broken:  # broken, not yet failed: its next wait must not be
            self.broken.remove(task)

    def audit(self) -> None:
        """Find descriptors closed behind the kernel's back; their waiters become broken."""
        for fd in {*self.readers, *self.writers}:
            if not self._alive(fd):
                self.forget(fd)

    def forget(self, fd: int) -> None:
        """fd was closed: move its waiters to ``broken`` and drop its registration."""
        for table in (self.readers, self.writers):
            task = table.pop(fd, None)
            if task is not None:
                self.broken.append(task)
        self._drop(fd)

    def set_wakeup_fd(self, fd: int) -> None:
        """Watch fd (a non-blocking pipe's read end) in every poll; drain it when ready."""
        self.wakeup_fd = fd

    def _drain_wakeup(self) -> None:
        try:
            while os.read(self.wakeup_fd, 4096):
                pass
        except OSError:   # empty (EAGAIN), or closed with the kernel
            pass

    # What a backend provides.
    def poll(self, timeout: float | None) -> list[Any]:
        """Block up to timeout seconds (None: until an event); return the woken waiters."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the OS resources behind the poller."""

    def _alive(self, fd: int) -> bool:
        """Is fd still the descriptor its waiters asked about?"""
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True

    def _is_armed_for(self, fd: int, file: Any) -> bool:
        """Is fd known, without a system call, to still be this very (open) file?"""
        return False

    def _arm(self, fd: int, wait: Any) -> None:
        """A waiter was added on fd with wait: make the OS watch for what the waiters want."""

    def _disarm(self, fd: int) -> None:
        """A waiter on fd was cancelled."""

    def _drop(self, fd: int) -> None:
        """fd is gone: forget any registration for it."""


class SelectPoller(Poller):
    """``select.select`` over the waiter tables: simple, portable, fds below FD_SETSIZE."""

    FD_SETSIZE = 1024

    def __init__(self) -> None:
        super().__init__()
        self._identity: dict[int, tuple[int, int]] = {}

    def _arm(self, fd: int, wait: Any) -> None:
        if fd >= self.FD_SETSIZE:
            raise ValueError(
                f"fd {fd} is too large for select() (FD_SETSIZE is {self.FD_SETSIZE}); "
                "use Scheduler(poller='epoll')"
            )
        if fd not in self._identity:
            st = os.fstat(fd)
            self._identity[fd] = (st.st_dev, st.st_ino)

    def _disarm(self, fd: int) -> None:
        if fd not in self.readers and fd not in self.writers:
            self._identity.pop(fd, None)

    def _drop(self, fd: int) -> None:
        self._identity.pop(fd, None)

    def _alive(self, fd: int) -> bool:
        try:
            st = os.fstat(fd)
        except OSError:
            return False
        return self._identity.get(fd, (st.st_dev, st.st_ino)) == (st.st_dev, st.st_ino)

    def poll(self, timeout: float | None) -> list[Any]:
        try:
            readers = self.readers if self.wakeup_fd < 0 else [*self.readers, self.wakeup_fd]
            r, w, _ = select.select(readers, self.writers, (), timeout)
        except (OSError, ValueError):  # a descriptor was closed: find it, report the rest
            self.audit()
            return []
        woken: list[Any] = []
        for fd in {*r, *w}:
            if fd == self.wakeup_fd:
                self._drain_wakeup()
                continue
            if not self._alive(fd):  # closed and reused: the old waiter must not wake
                self.forget(fd)
                continue
            if fd in r and fd in self.readers:
                woken.append(self.readers.pop(fd))
            if fd in w and fd in self.writers:
                woken.append(self.writers.pop(fd))
            self._disarm(fd)
        return woken


def _closed(file: Any, fd: int) -> bool:
    """Was file, which fd was taken from, closed since (behind the kernel's back)?"""
    if isinstance(file, int):
        return False   # a bare number: nothing to ask (the poller's checks find it out)
    try:
        return file.fileno() != fd
    except (OSError, ValueError):  # what a closed file object may raise instead of -1
        return True


def make_poller(kind: str | None = None) -> Poller:
    """A poller by name: "epoll" (the default where available) or "select"."""
    if kind is None:
        kind = "epoll" if hasattr(select, "epoll") else "select"
    if kind == "epoll":
        from .epoll import EpollPoller  # here: epoll.py builds on this module
        return EpollPoller()
    if kind == "select":
        return SelectPoller()
    raise ValueError(f"unknown poller {kind!r}: choose 'epoll' or 'select'")
