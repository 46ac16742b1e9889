"""Every address the gateway listens on resolves, checked before anything starts.

A ``[server] host = "gateway.internal"`` that does not resolve decodes fine, so
``check-config`` used to pass it and ``serve`` then died binding the socket with a bare
``[Errno -2] Name or service not known``. Both now resolve every listener host the way the
socket layer will (``getaddrinfo`` with ``AI_PASSIVE``) and name the file, table and key.

Resolving can hang on a broken resolver, so each name gets a bounded time in a daemon
thread: a check that never answers must not hang ``check-config`` with it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

from gateway.config_errors import ConfigError

RESOLVE_TIMEOUT_S = 5.0


def listen_hosts(config: Any) -> Iterator[tuple[str, str, str]]:
    """(table, key, host) of every listener the configuration starts."""
    server = config.core.server
    yield "server", "host", server.host
    yield "server", "admin_host", server.admin_host
    email = config.adapters.get("email")
    smtp_in = getattr(email, "smtp_in", None)
    if getattr(email, "enabled", False) and smtp_in is not None and smtp_in.enabled:
        yield "email.smtp_in", "host", smtp_in.host


def host_problem(host: str, timeout_s: float = RESOLVE_TIMEOUT_S) -> str | None:
    """Why a listener cannot bind to ``host`` by name, or None."""
    if not host:
        return None  # every interface, as aiohttp and asyncio take it
    answer: list[str | None] = []
    done = threading.Event()

    def resolve() -> None:
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except (OSError, UnicodeError) as exc:
            answer.append(f"cannot resolve {host!r}: {getattr(exc, 'strerror', None) or exc}")
        else:
            answer.append(None)
        done.set()

    threading.Thread(target=resolve, name=f"resolve {host}", daemon=True).start()
    if not done.wait(timeout_s):
        return f"cannot resolve {host!r}: no answer within {timeout_s:g} s"
    return answer[0]


def check_listen_hosts(config: Any, overrides: dict[tuple[str, str], str] | None = None) -> None:
    """Raise a ConfigError for the first listener host that does not resolve. ``overrides``:
    (table, key) -> the option that set it (``--host``), named instead of the file."""
    for table, key, host in listen_hosts(config):
        if problem := host_problem(host):
            option = (overrides or {}).get((table, key))
            if option is not None:
                raise ConfigError("command line", None, option, problem)
            raise ConfigError(config.source, table, key, problem)
