"""A Redis outage is said once when it starts and once when it ends, not a traceback every
250 ms: every background loop (housekeeping, the node bus, the WeChat window and kf sweeps,
a review feed's poller) backs off with jitter and keeps the in-between to DEBUG. Whatever
logger writes it, nothing reaches ERROR and every traceback is an outage's first line. Redis
is a private server of this test, stopped and started again on the same port."""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from harness import agent, make_config, running
from helpers import free_port, wait_until

from gateway.redis.embedded import RedisServer, find_redis_server

# Each loop's outage name starts with one of these; all of them must back off.
LOOPS = (
    "housekeeping",
    "node subscription",
    "wechat: the window sweep",
    "wechat kf: the pending sweep",
    "reviews shop: the poll loop",
)
STARTED, AGAIN, ENDED = "retrying with backoff", "failed again", "works again"


def outage_lines(caplog, level: int, text: str, times: int = 1) -> set[str]:
    """The loops that wrote at least ``times`` lines at ``level`` containing ``text``."""
    counts = collections.Counter(
        loop
        for r in caplog.records
        if r.levelno == level and text in r.getMessage()
        for loop in LOOPS
        if r.getMessage().startswith(loop)
    )
    return {loop for loop, n in counts.items() if n >= times}


@pytest_asyncio.fixture
async def empty_feed() -> AsyncIterator[str]:
    """A review feed that answers every poll with no reviews."""

    async def reviews(_: web.Request) -> web.Response:
        return web.json_response({"data": {"reviews": []}})

    app = web.Application()
    app.router.add_get("/json", reviews)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/json"
    finally:
        await runner.cleanup()


def config(tenant: str, feed_url: str):
    unused = "http://127.0.0.1:9"  # no call reaches WeChat: nothing is due or pending
    return make_config(
        tenant,
        agents=[agent("alice") | {"capacity": {"webchat": 3, "wechat": 3, "review": 3}}],
        queues=[{"name": "general", "channels": ["webchat", "wechat", "review"]}],
        wechat={
            "accounts": [
                {"name": "main", "app_id": "wx1", "app_secret": "s", "token": "token42"}
                | {"api_base": unused}
            ],
            "kf": [
                {"name": "shop", "corp_id": "ww1", "secret": "s", "token": "token42"}
                | {"aes_key": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut", "api_base": unused}
            ],
            "window_sweep_s": 0.05,
            "kf_sweep_s": 0.05,
        },
        reviews={
            "feeds": [
                {"name": "shop", "kind": "json", "url": feed_url, "poll_s": 0.1}
                | {"fields": {"items": "data.reviews", "id": "id", "text": "text"}}
            ],
            "backoff_base_s": 0.05,
        },
        routing={"sweep_interval_s": 0.05},
    )


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    tenant, caplog, empty_feed
):
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    caplog.set_level(logging.DEBUG)
    port = free_port()
    server = RedisServer(persistent=False, port=port).start()
    try:
        async with running(config(tenant, empty_feed), server.url) as gw:
            assert gw
            caplog.clear()
            server.stop()
            # Every loop failed at least three rounds: the first loud, two more at DEBUG.
            await wait_until(
                lambda: outage_lines(caplog, logging.DEBUG, AGAIN, times=2) == set(LOOPS),
                timeout=60,
                message="every loop retried at DEBUG",
            )
            during = list(caplog.records)
            server = RedisServer(persistent=False, port=port).start()
            await wait_until(
                lambda: outage_lines(caplog, logging.WARNING, ENDED) == set(LOOPS),
                timeout=60,
                message="every loop said the outage ended",
            )
            assert outage_lines(caplog, logging.WARNING, STARTED) == set(LOOPS)
            loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
            # Beyond each loop's two lines, only the few requests and sockets that were
            # under way may say they failed; nothing is an ERROR.
            assert len(loud) <= 3 * len(LOOPS), [f"{r.name}: {r.getMessage()}" for r in loud]
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
                f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR
            ]
            tracebacks = [r for r in caplog.records if r.exc_info is not None and r.levelno > 10]
            assert len(tracebacks) <= len(LOOPS) * 2, [r.getMessage() for r in tracebacks]
            quiet_rounds = [r for r in during if r.levelno == logging.DEBUG and AGAIN in r.msg]
            assert len(quiet_rounds) >= 2 * len(LOOPS)
    finally:
        server.stop()
