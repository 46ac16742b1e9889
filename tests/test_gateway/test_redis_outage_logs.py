"""A Redis outage is said once when it starts and once when it ends, not a traceback every
250 ms: the background loops back off (with jitter) and keep the in-between to DEBUG. Redis
is a private server of this test, stopped and started again on the same port."""

from __future__ import annotations

import logging

import pytest
from harness import make_config, running
from helpers import free_port, wait_until

from gateway.redis.embedded import RedisServer, find_redis_server

LOOPS = ("gateway.housekeeping", "gateway.flows.dispatcher")


def records(caplog, level: int, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name in LOOPS and r.levelno == level and text in r.getMessage()
    ]


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(tenant, caplog):
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    caplog.set_level(logging.DEBUG)
    port = free_port()
    server = RedisServer(persistent=False, port=port).start()
    try:
        async with running(make_config(tenant), server.url) as gw:
            assert gw
            server.stop()
            # Several failed rounds, each at DEBUG after the first.
            again = lambda: len(records(caplog, logging.DEBUG, "failed again")) >= 4  # noqa: E731
            await wait_until(again, timeout=60)
            server = RedisServer(persistent=False, port=port).start()
            await wait_until(lambda: records(caplog, logging.WARNING, "works again"), timeout=60)
            loud = [r for r in caplog.records if r.name in LOOPS and r.levelno >= logging.WARNING]
            started = records(caplog, logging.WARNING, "retrying with backoff")
            assert len(started) <= len(LOOPS) and started[0].exc_info is not None
            assert len(loud) <= 2 * len(LOOPS), [r.getMessage() for r in loud]
            assert not [r for r in caplog.records if r.name in LOOPS and r.levelno >= logging.ERROR]
    finally:
        server.stop()
