"""Fixtures shared by the whole suite.

The suite starts its own Redis (one per session, ephemeral, on a free port) and never touches
a server it did not start. Every test gets its own tenant name; keys carry the tenant, so tests
never need FLUSHALL and could run in parallel against the one server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from helpers import NO_REDIS

from gateway.config import RedisConfig
from gateway.redis.client import make_redis
from gateway.redis.embedded import RedisServer, find_redis_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private, non-persistent redis-server for the whole session."""
    if find_redis_server() is None:
        pytest.skip(NO_REDIS)
    with RedisServer(persistent=False) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def tenant() -> str:
    """A tenant name of this test's own: its keys cannot meet another test's."""
    return "t" + uuid.uuid4().hex[:10]


@pytest_asyncio.fixture(name="redis")
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The gateway's own client (bytes mode, RESP2, single commands and pipelines on one
    multiplexed connection) on the session's server, closed after the test."""
    client = make_redis(redis_url, RedisConfig())
    try:
        yield client
    finally:
        await client.aclose()
