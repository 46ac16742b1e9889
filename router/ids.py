"""Identifiers that sort by creation time, so that equal-priority conversations enqueued in
the same millisecond still leave the queue in arrival order."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str, now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}{ms:012x}{secrets.token_hex(5)}"
