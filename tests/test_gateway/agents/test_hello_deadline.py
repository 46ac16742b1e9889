"""A socket that never says hello is closed at its hello timeout even while it answers every
heartbeat ping: the deadline is the gateway's own, not aiohttp's receive timeout, which
starts again on each pong it absorbs. The websockets client answers pings by itself, as a
browser does, so these sockets look alive to aiohttp the whole time."""

from __future__ import annotations

from harness import connect, make_config, running
from obs_support import scraped

HEARTBEAT_S = 0.2  # many pings, each answered, before the hello timeout


async def test_an_agent_socket_without_hello_is_closed_despite_answering_pings(tenant, redis_url):
    config = make_config(tenant, server={"heartbeat_s": HEARTBEAT_S, "hello_timeout_s": 1.5})
    async with running(config, redis_url) as gw:
        for path in ("/agent/ws", "/supervisor/ws"):
            async with connect(gw.ws_url(path)) as silent:
                assert await silent.expect_closed(timeout=30) == 4401
                assert silent.frames[-1]["code"] == "hello_timeout"
        # Counted as slow clients, so a dashboard sees them.
        closed = await scraped(gw.admin_base, "zhongtai_slow_clients_closed_total", phase="hello")
        assert closed == 2


async def test_a_web_chat_socket_without_hello_is_closed_despite_answering_pings(tenant, redis_url):
    config = make_config(tenant)
    config.adapters["webchat"].hello_timeout_s = 1.5
    config.adapters["webchat"].heartbeat_s = HEARTBEAT_S
    async with running(config, redis_url) as gw:
        async with connect(gw.ws_url("/webchat/ws")) as silent:
            assert await silent.expect_closed(timeout=30) == 4408
        limit = "webchat.hello_timeout_s"
        assert await scraped(gw.admin_base, "zhongtai_limited_total", limit=limit) == 1
