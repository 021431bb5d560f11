"""A free TCP port on loopback, for the servers the tests start (fakes, app processes, Dovecot)."""
from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on right now (the OS's choice; the caller binds it soon after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
