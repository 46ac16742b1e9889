"""A feed's poll state in Redis: its cursor, its ETag and Last-Modified, its failures and
when it may be polled next, shared by every gateway process.

Keeping the schedule in Redis (not in a process) means that a restarted gateway honours a
Retry-After or a backoff its predecessor was given, and that several processes poll a feed
once per interval between them: a process polls only while it holds the feed's lease.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from adapters.contract import AdapterHost

ADAPTER = "reviews"


class FeedState(msgspec.Struct, kw_only=True):
    cursor: str = ""  # the newest review time or id seen (cursor = "time" | "id")
    etag: str = ""  # of the first page
    last_modified: str = ""
    failures: int = 0  # polls failed in a row
    next_at_ms: int = 0  # no process polls before this (interval, backoff, Retry-After)
    polled_at_ms: int = 0  # the last poll attempt, successful or not
    ok_at_ms: int = 0  # the last successful poll
    first_done: bool = False  # a poll has succeeded once (baseline_first_poll)
    last_error: str = ""


_FIELDS = {
    f: t
    for f, t in zip(
        FeedState.__struct_fields__, (str, str, str, int, int, int, int, bool, str), strict=True
    )
}


def now_ms() -> int:
    return int(time.time() * 1000)


class FeedCursor:
    def __init__(self, host: AdapterHost, feed: str) -> None:
        self.host, self.feed = host, feed
        self.key = host.key(ADAPTER, feed, "feed")
        self.lease_key = host.key(ADAPTER, feed, "lease")

    async def load(self) -> FeedState:
        raw: dict[bytes, bytes] = await self.host.redis.hgetall(self.key)
        values: dict[str, Any] = {}
        for name, value in raw.items():
            field = name.decode()
            kind = _FIELDS.get(field)
            if kind is None:
                continue
            text = value.decode()
            try:
                values[field] = text == "1" if kind is bool else kind(text)
            except ValueError:
                continue  # a damaged field falls back to its default
        return FeedState(**values)

    async def save(self, **fields: Any) -> None:
        mapping = {
            k: ("1" if v else "0") if isinstance(v, bool) else str(v) for k, v in fields.items()
        }
        unknown = set(mapping) - set(_FIELDS)
        if unknown:
            raise KeyError(f"not feed state fields: {sorted(unknown)}")
        await self.host.redis.hset(self.key, mapping=mapping)

    def lease(self, ttl_s: float) -> Any:
        """A lock held while polling; non-blocking: if another process holds it, that
        process is polling now."""
        return self.host.redis.lock(self.lease_key, timeout=ttl_s, blocking=False)
