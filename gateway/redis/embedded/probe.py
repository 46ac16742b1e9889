"""Asking whoever answers on the server's address for its pid and whether it serves yet.

Start-up waits on this rather than on a client library: a raw socket needs no pool, no retries
and no event loop (serve has none yet), and the pid in ``INFO server`` tells our own child
apart from another server that already listened on the port.
"""

from __future__ import annotations

import socket
from typing import IO, NamedTuple


class Probe(NamedTuple):
    pid: int  # the process id of the server that answered
    ready: bool  # False while it replays its AOF (PING answers -LOADING)


def probe(address: tuple[str, int] | str, password: str | None) -> Probe | None:
    """Who answers at ``address`` and whether it serves commands yet; None if nobody does.

    INFO answers even while the AOF loads, so PING tells whether loading is done.
    """
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(address)
            request = _command("INFO", "server") + _command("PING")
            if password is not None:
                request = _command("AUTH", password) + request
            sock.sendall(request)
            with sock.makefile("rb") as stream:
                if password is not None and _read_reply(stream).startswith(b"-"):
                    return None
                info = _read_reply(stream)
                pong = _read_reply(stream)
    except (OSError, ValueError, ConnectionError):
        return None
    for line in info.splitlines():
        if line.startswith(b"process_id:"):
            return Probe(int(line.split(b":", 1)[1]), pong == b"+PONG")
    return None


def _command(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _read_reply(stream: IO[bytes]) -> bytes:
    """Read one RESP2 simple, error or bulk reply: all that AUTH and INFO return."""
    line = _read_line(stream)
    if line[:1] in (b"+", b"-"):
        return line
    if line[:1] == b"$":
        size = int(line[1:])
        data = stream.read(size + 2) if size >= 0 else b""
        return data[:size]
    raise ConnectionError(f"unexpected reply {line[:40]!r}")


def _read_line(stream: IO[bytes]) -> bytes:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("truncated reply")
    return line[:-2]
