"""Which task waits on which descriptor, and which of them the OS says are ready.

One small interface, ``Poller``, keeps the waiter tables and the rules every backend
shares: one reader and one writer per descriptor, a second one is an error; a waiter can
be cancelled; a closed descriptor's waiters are reported as broken rather than left to
hang.  Each backend is a short subclass that only talks to the OS:

* ``SelectPoller``: ``select.select``, the classic, O(n) per poll, descriptors below
  FD_SETSIZE only.  It remembers each descriptor's identity (device, inode), so a
  descriptor number that was closed and reused never wakes the old waiter.
* ``EpollPoller``: Linux epoll, O(ready) per poll.  Registrations persist across waits:
  a task that waits again on the same socket costs no system call at all.  They are
  shrunk lazily, when epoll reports an event nobody waits for, so the kernel never spins
  on a ready descriptor.  A registration is trusted only for the same open file object;
  anything else goes through ``epoll_ctl``, which fails for a number that was closed and
  reused (epoll forgets closed files by itself): that is how stale waits are found.

The kernel calls ``add``, ``cancel``, ``forget``, ``poll`` and ``audit``; broken waiters
(descriptor closed under them) collect in ``broken`` for the kernel to fail with EBADF.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import weakref
from typing import Any

from .errors import ResourceBusy

__all__ = ["EpollPoller", "Poller", "SelectPoller", "make_poller"]

READ, WRITE = "read", "write"
# epoll's event bits (absent from select where there is no epoll, as on macOS)
_IN, _OUT = getattr(select, "EPOLLIN", 1), getattr(select, "EPOLLOUT", 4)
_ERR, _HUP = getattr(select, "EPOLLERR", 8), getattr(select, "EPOLLHUP", 16)


class Poller:
    """The waiter tables: descriptor -> task, one table per direction."""

    def __init__(self) -> None:
        self.readers: dict[int, Any] = {}
        self.writers: dict[int, Any] = {}
        self.broken: list[Any] = []  # waiters whose descriptor was closed under them

    def __len__(self) -> int:
        return len(self.readers) + len(self.writers)

    def add(self, fd: int, event: str, task: Any, file: Any = None) -> None:
        """Make task wait until fd (from file, if given) is ready for event (READ or WRITE)."""
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
            self._arm(fd, file)
        except BaseException:
            del table[fd]  # the OS refused: leave no waiter behind that nothing will wake
            raise

    def cancel(self, fd: int, event: str, task: Any) -> None:
        """Forget task's wait for (fd, event), for a task that is being killed."""
        table = self.readers if event == READ else self.writers
        if table.get(fd) is task:  # not a broken waiter's number, now another task's
            del table[fd]
            self._disarm(fd)

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

    def _arm(self, fd: int, file: Any) -> None:
        """A waiter was added on fd: make the OS watch for what the waiters want."""

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

    def _arm(self, fd: int, file: Any) -> None:
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
            r, w, _ = select.select(self.readers, self.writers, (), timeout)
        except (OSError, ValueError):  # a descriptor was closed: find it, report the rest
            self.audit()
            return []
        woken: list[Any] = []
        for fd in {*r, *w}:
            if not self._alive(fd):  # closed and reused: the old waiter must not wake
                self.forget(fd)
                continue
            if fd in r and fd in self.readers:
                woken.append(self.readers.pop(fd))
            if fd in w and fd in self.writers:
                woken.append(self.writers.pop(fd))
            self._disarm(fd)
        return woken


class EpollPoller(Poller):
    """Linux epoll with lazy, persistent, level-triggered registrations."""

    _RD = _IN | _ERR | _HUP  # what wakes a reader: readable, or an error/hang-up to read
    _WR = _OUT | _ERR | _HUP

    def __init__(self) -> None:
        super().__init__()
        self._epoll = select.epoll()
        self._armed: dict[int, int] = {}  # fd -> the events epoll watches on it
        # fd -> a weak reference to the file epoll watches it for, one table per direction
        # (add()'s shortcut needs one lookup); weak, so that a socket its task dropped
        # without closing is still freed, and closed.  A bare int is never in them.
        self._reading: dict[int, Any] = {}
        self._writing: dict[int, Any] = {}

    def close(self) -> None:
        self._epoll.close()

    def add(self, fd: int, event: str, task: Any, file: Any = None) -> None:
        """As Poller.add, with a shortcut for what every connection does after each message.

        When the same open file waits again for what epoll already watches and no other
        task waits on it, there is nothing to check and no system call to make.
        """
        if event == READ:
            table, ref = self.readers, self._reading.get(fd)
        else:
            table, ref = self.writers, self._writing.get(fd)
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
        ref = self._reading.get(fd) or self._writing.get(fd)  # (add() tests the same)
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
        for watching, bit in ((self._reading, _IN), (self._writing, _OUT)):
            if mask & bit and ref is not None:
                watching[fd] = ref
            else:
                watching.pop(fd, None)

    def _drop(self, fd: int) -> None:
        self._reading.pop(fd, None)
        self._writing.pop(fd, None)
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
                if fd not in self._armed:  # a registration _drop() could not remove
                    self._renew()
                    break                  # (the rest of events is about the old epoll)
                ref = self._reading.get(fd) or self._writing.get(fd)
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


def make_poller(kind: str | None = None) -> Poller:
    """A poller by name: "epoll" (the default where available) or "select"."""
    if kind is None:
        kind = "epoll" if hasattr(select, "epoll") else "select"
    if kind == "epoll":
        return EpollPoller()
    if kind == "select":
        return SelectPoller()
    raise ValueError(f"unknown poller {kind!r}: choose 'epoll' or 'select'")
