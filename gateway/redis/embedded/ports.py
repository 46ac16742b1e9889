"""Choosing a TCP port on 127.0.0.1 for a server that is about to bind it.

Both answers are only true for a moment: another process may bind the port before
redis-server does, which is why the server retries on a bind failure.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def pick_free_port(host: str = HOST) -> int:
    """A TCP port that nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a listener could bind ``host:port`` now.

    SO_REUSEADDR as redis-server itself sets it: connections in TIME_WAIT from a previous run
    do not make the port look taken, only a live listener does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
