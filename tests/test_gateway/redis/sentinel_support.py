"""A Redis Sentinel set-up on loopback for the tests (gateway.redis.embedded.sentinels), skipped
with the Debian package to install when redis-server or redis-sentinel is missing."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest

from gateway.redis.embedded import find_redis_server
from gateway.redis.embedded.sentinels import (
    DEADLINE_S,
    MASTER,
    SENTINEL_HINT,
    SentinelSet,
    poll,
    sentinel_binary,
)
from gateway.redis.embedded.sentinels import sentinel_set as started

__all__ = ["DEADLINE_S", "MASTER", "SentinelSet", "poll", "sentinel_set"]


@contextlib.contextmanager
def sentinel_set(count: int = 3) -> Iterator[SentinelSet]:
    if find_redis_server() is None or shutil.which("redis-server") is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")
    if sentinel_binary() is None:
        pytest.skip(f"redis-sentinel not found: {SENTINEL_HINT}")
    with started(count) as setup:
        yield setup
