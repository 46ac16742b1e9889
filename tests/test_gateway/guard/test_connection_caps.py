"""Connection caps on the public port, per client address and in total: sockets past a cap
are closed with 1013 "try again later", HTTP requests get 429 or 503 with Retry-After, each
refusal is counted, a trusted proxy's X-Forwarded-For names the address, and a freed slot
is taken again."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from harness import agent, connect, make_config, running
from helpers import wait_until

PER_ADDRESS, TOTAL = 3, 5


@pytest.fixture
def config(tenant):
    return make_config(
        tenant,
        server={
            "tenant": tenant,
            "max_connections_per_address": PER_ADDRESS,
            "max_connections": TOTAL,
            "trusted_proxies": ["127.0.0.0/8"],
        },
        agents=[agent("alice")],
    )


def refused(gw, scope: str) -> float:
    return gw.services.metrics.connections_refused.labels(scope)._value.get()


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_sockets_past_the_per_address_cap_are_told_to_try_later(config, redis_url):
    async with running(config, redis_url) as gw, contextlib.AsyncExitStack() as stack:
        url = gw.ws_url("/webchat/ws")
        held = [await stack.enter_async_context(connect(url)) for _ in range(PER_ADDRESS)]
        async with connect(url) as extra:
            assert await extra.expect_closed() == 1013
            assert "too many connections from your address" in extra.ws.close_reason
        async with connect(gw.ws_url("/agent/ws")) as agent_socket:  # every socket counts
            assert await agent_socket.expect_closed() == 1013
        assert refused(gw, "address") == 2
        async with aiohttp.ClientSession() as http, http.get(f"{gw.base}/console/") as reply:
            assert reply.status == 429 and reply.headers["Retry-After"].isdigit()
            assert "too many connections" in await reply.text()

        # Another client behind the trusted proxy is not this one.
        async with connect(url, additional_headers=forwarded("203.0.113.9")) as other:
            await other.send(type="hello")
            await other.expect("welcome")

        await held[0].close()
        assert await wait_until(
            lambda: gw.services.metrics.connections_open._value.get() == PER_ADDRESS - 1
        )
        async with connect(url) as again:
            await again.send(type="hello")
            await again.expect("welcome")


async def test_past_the_total_cap_every_address_waits(config, redis_url):
    async with running(config, redis_url) as gw, contextlib.AsyncExitStack() as stack:
        url = gw.ws_url("/webchat/ws")
        for i in range(TOTAL):
            await stack.enter_async_context(
                connect(url, additional_headers=forwarded(f"198.51.100.{i}"))
            )
        async with connect(url, additional_headers=forwarded("198.51.100.200")) as extra:
            assert await extra.expect_closed() == 1013
            assert "too many connections" in extra.ws.close_reason
        headers = forwarded("198.51.100.201")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gw.base}/console/", headers=headers) as reply,
        ):
            assert reply.status == 503 and reply.headers["Retry-After"].isdigit()
        assert refused(gw, "total") == 2


async def test_idle_connections_are_capped_too(tenant, redis_url):
    """Connections that never send a request count nowhere else: past a quarter more than
    max_connections, a new one is answered 503 with Retry-After and closed."""
    config = make_config(tenant, server={"tenant": tenant, "max_connections": 4})
    async with running(config, redis_url) as gw:
        idle = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(5)]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            async with asyncio.timeout(10):
                answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 5" in answer
            assert refused(gw, "total") == 1
        finally:
            for _, idle_writer in idle:
                idle_writer.close()

        async def served() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{gw.base}/console/") as reply,
                ):
                    return reply.status == 200
            except aiohttp.ClientError:
                return False

        assert await wait_until(served, timeout=10)
