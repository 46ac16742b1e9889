"""Identifiers that sort by creation time to the millisecond: a listing sorted by id is
roughly chronological, and ids made in different processes never collide. Within one
millisecond the random tail decides, so ids do not record arrival order there; the queues
order by their own score (priority, then enqueue time) and break ties by id only to be
deterministic."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str, now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}{ms:012x}{secrets.token_hex(5)}"
