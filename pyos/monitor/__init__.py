"""The monitor console: look inside a running pyos program, and act on it, from outside.

``pyos.run(main(), monitor=True)``, ``Scheduler(monitor=...)`` or ``PYOS_MONITOR=...``
opens a console served by threads of its own, so it answers while a task hogs the CPU
or the kernel is stuck: ``ps``, ``where TID``, ``waits``, ``stats``, ``trace on|off``,
``cancel TID``, ``kill TID``.  ``python -m pyos.monitor [ADDRESS]`` is a client with
line editing; ``nc -U PATH`` works too.

* address.py: where it listens (a Unix socket at mode 0600, or TCP on loopback);
* server.py: the accept thread and a thread per client, a line protocol with a prompt;
* commands.py: what each command does; actions go through ``call_soon_threadsafe``;
* snapshot.py: reading the kernel from another thread without crashing either side;
* __main__.py: the client.
"""

from .address import Address, parse_address
from .server import Monitor

__all__ = ["Address", "Monitor", "parse_address"]
