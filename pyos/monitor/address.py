"""Where the monitor listens, and how a client finds it.

The console controls the process (it can kill tasks), so by default it is a Unix-domain
socket only its owner can open: mode 0600, set between ``bind`` and ``listen``, when
nobody can connect yet.  TCP is allowed on loopback only, and there only the commands
that change nothing are served (see commands.py): a port on 127.0.0.1 is open to every
user of the machine.  An address is written ``unix:PATH`` or ``tcp:HOST:PORT``; the
default path is ``pyos-monitor-PID.sock`` in ``$XDG_RUNTIME_DIR`` (private to the user)
or else the temporary directory, so a client given a pid, or nothing, can find it.
"""

from __future__ import annotations

import errno
import glob
import ipaddress
import os
import socket
import stat
import tempfile
from dataclasses import dataclass

__all__ = ["Address", "connect", "default_path", "find_default", "listen", "parse_address"]

_YES = ("1", "true", "yes", "on", "default")


@dataclass(frozen=True)
class Address:
    """A monitor's address: a Unix socket path, or a TCP host and port."""

    kind: str                 # "unix" or "tcp"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        return f"tcp:[{self.host}]:{self.port}" if ":" in self.host else \
            f"tcp:{self.host}:{self.port}"


def default_path(pid: int | None = None) -> str:
    """The default socket of process pid (this one if None)."""
    return os.path.join(_default_dir(), f"pyos-monitor-{pid or os.getpid()}.sock")


def _default_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    return runtime if runtime and os.path.isdir(runtime) else tempfile.gettempdir()


def parse_address(spec: bool | str, *, client: bool = False) -> Address:
    """``True``, ``"1"``: the default socket; ``"unix:PATH"``; ``"tcp:HOST:PORT"``.

    A server may listen on loopback only (ValueError otherwise).  A client may also name
    a pid (that process's default socket) or a bare path, and any host (a tunnel).
    """
    text = str(spec).strip()
    if spec is True or text.lower() in _YES:
        return Address("unix", path=default_path())
    kind, sep, rest = text.partition(":")
    if sep and kind == "unix" and rest:
        return Address("unix", path=rest)
    if sep and kind == "tcp":
        host, _, port_text = rest.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        host = "127.0.0.1" if host == "localhost" else host
        try:
            port = int(port_text)
            if not 0 <= port <= 65535:
                raise ValueError
        except ValueError:
            raise ValueError(f"monitor address {text!r}: the port must be 0-65535") from None
        if not client:
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = False
            if not loopback:
                raise ValueError(f"monitor address {text!r}: the console listens on loopback "
                                 "only (127.0.0.1 or ::1); its commands would be open to "
                                 "anyone who can reach the port")
        return Address("tcp", host=host, port=port)
    if client and text.isdigit():
        return Address("unix", path=default_path(int(text)))
    if client and "/" in text:
        return Address("unix", path=text)
    raise ValueError(f"monitor address {text!r}: expected true, unix:PATH or "
                     "tcp:127.0.0.1:PORT" + (", a pid or a path" if client else ""))


def listen(address: Address) -> socket.socket:
    """A listening socket at address: a Unix one at mode 0600, or TCP on loopback."""
    if address.kind == "tcp":
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
            sock.listen(8)
        except BaseException:
            sock.close()
            raise
        return sock
    _remove_stale(address.path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address.path)
        os.chmod(address.path, 0o600)   # before listen(): until then nobody can connect
        sock.listen(8)
    except BaseException:
        sock.close()
        raise
    return sock


def _remove_stale(path: str) -> None:
    """Remove a socket left at path by a process that died; refuse anything else."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket: not replacing it", path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)                  # nobody listens there any more
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another monitor is listening there", path)


def connect(address: Address, timeout: float | None = 10.0) -> socket.socket:
    """A client's connection to the monitor at address."""
    if address.kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.path)
        except BaseException:
            sock.close()
            raise
        return sock
    return socket.create_connection((address.host, address.port), timeout=timeout)


def find_default() -> list[str]:
    """The default sockets of this user's live processes (for a client given no address)."""
    found = []
    for path in sorted(glob.glob(os.path.join(_default_dir(), "pyos-monitor-*.sock"))):
        pid = path.rsplit("-", 1)[1].removesuffix(".sock")
        try:
            mine = os.lstat(path).st_uid == os.getuid()
            os.kill(int(pid), 0)
        except (OSError, ValueError):
            continue                     # gone, or not a pid: a stale socket
        if mine:
            found.append(path)
    return found
