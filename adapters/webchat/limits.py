"""Limits that must hold across a visitor's sockets and the gateway's processes, so they
live in Redis: messages per visitor per minute (a second tab or a reconnect does not start
afresh) and new visitors per client address per minute (one client cannot mint thousands of
visitors and push real customers down the queue).

Each is a counter per calendar minute, INCR and EXPIRE in one pipelined round trip: cheap,
and at worst twice the limit across a minute boundary, which is fine for flood control. The
client's address is the socket's peer, or, when that peer is a configured trusted proxy,
the nearest address in ``X-Forwarded-For`` that is not one.

Before the visitor's minute is counted, each socket spends from its own token bucket, so
that a flood from one socket is refused without a Redis round trip."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The most messages a socket may send at once, under messages_per_minute.
MAX_BURST = 10


def networks(entries: Sequence[str]) -> list[Network]:
    """Parse trusted proxies ("10.0.0.5", "10.0.0.0/8", "::1"); ValueError names the bad one."""
    found = []
    for entry in entries:
        try:
            found.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            detail = f"trusted_proxies: {entry!r} is not an IP address or network"
            raise ValueError(detail) from None
    return found


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(request: web.Request, proxies: Sequence[Network]) -> str:
    """Who is at the other end: the peer, unless it is a trusted proxy, then the right-most
    X-Forwarded-For hop that is not one (hops further left are the client's to forge)."""
    peer = request.remote or "unknown"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def this_minute(now: float | None = None) -> str:
    return str(int((wall_clock() if now is None else now) // 60))


# The clock the minutes are read from; tests hold it still so that no count straddles a
# minute boundary.
wall_clock = time.time


async def count_this_minute(redis: object, key: str) -> int:
    """Count one more in this key (which names its minute) and say how many it has now."""
    pipe = redis.pipeline(transaction=False)  # type: ignore[attr-defined]
    pipe.incr(key)
    pipe.expire(key, 120)
    count, _ = await pipe.execute()
    return int(count)


@dataclasses.dataclass
class TokenBucket:
    """A socket's allowance of ``per_minute`` messages, refilled continuously up to its
    burst; ``per_minute`` 0: no limit."""

    per_minute: int
    allowance: float = 0.0
    checked_at: float = dataclasses.field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.allowance = self.burst

    @property
    def burst(self) -> float:
        return float(min(self.per_minute, MAX_BURST))

    def take(self) -> bool:
        """Spend one message if the bucket holds one."""
        if not self.per_minute:
            return True
        now = time.monotonic()
        refill = (now - self.checked_at) * self.per_minute / 60.0
        self.allowance = min(self.burst, self.allowance + refill)
        self.checked_at = now
        if self.allowance < 1.0:
            return False
        self.allowance -= 1.0
        return True
