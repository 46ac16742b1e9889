"""The admin port: /metrics with the public metric names, /healthz and /readyz."""

from __future__ import annotations

import os
import signal

import aiohttp
from harness import agent, agent_client, customer, make_config, running, start_gateway
from helpers import wait_until
from prometheus_client.parser import text_string_to_metric_families

from gateway.redis.embedded import RedisServer


async def scrape(gw) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(gw.admin_base + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_follow_a_conversation(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice"), agent("bob")])
    async with running(config, redis_url) as gw:
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="waiting with nobody online")
            await visitor.expect("queue")
            samples = await scrape(gw)
            assert samples[("zhongtai_queue_depth", (("queue", "general"),))] == 1
            assert samples[("zhongtai_queue_oldest_wait_seconds", (("queue", "general"),))] >= 0
            assert samples[("zhongtai_agents", (("status", "offline"),))] == 2
            assert samples[("zhongtai_websocket_connections", (("kind", "customer"),))] == 1
            inbound = (
                "zhongtai_inbound_messages_total",
                (("channel", "webchat"), ("outcome", "accepted")),
            )
            assert samples[inbound] == 1

            async with agent_client(gw, "alice") as alice:
                offer = await alice.expect("offer")
                await alice.send(type="accept", offer_id=offer["offer_id"])
                await alice.expect("assigned")
                await alice.send(
                    type="reply",
                    conversation_id=offer["conversation"]["id"],
                    text="hello",
                    client_msg_id="1",
                )
                await alice.expect("reply_ack")
                samples = await scrape(gw)
        assert samples[("zhongtai_queue_depth", (("queue", "general"),))] == 0
        assert samples[("zhongtai_agents", (("status", "available"),))] == 1
        assert samples[("zhongtai_websocket_connections", (("kind", "agent"),))] == 1
        assert (
            samples[("zhongtai_offers_total", (("outcome", "accepted"), ("queue", "general")))] == 1
        )
        assert samples[("zhongtai_wait_seconds_count", (("queue", "general"),))] == 1
        assert (
            samples[
                ("zhongtai_outbound_messages_total", (("channel", "webchat"), ("outcome", "sent")))
            ]
            == 1
        )
        assert samples[("zhongtai_first_response_seconds_count", (("channel", "webchat"),))] == 1
        # Buckets sit on the SLA thresholds.
        assert ("zhongtai_wait_seconds_bucket", (("le", "20.0"), ("queue", "general"))) in samples


async def test_health_and_readiness(tenant, redis_url):
    config = make_config(tenant)
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.admin_base + "/healthz") as response:
            assert response.status == 200
        async with http.get(gw.admin_base + "/readyz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ready"
        # The public port does not serve the admin endpoints.
        async with http.get(gw.base + "/metrics") as response:
            assert response.status == 404


async def test_readiness_fails_when_redis_is_gone(tenant):
    with RedisServer(persistent=False) as server:
        gw = await start_gateway(make_config(tenant), server.url)
        try:
            server.stop()
            async with (
                aiohttp.ClientSession() as http,
                http.get(gw.admin_base + "/readyz") as response,
            ):
                assert response.status == 503
                body = await response.json()
                assert any("redis" in problem for problem in body["problems"])
        finally:
            await gw.stop()


async def test_readiness_fails_in_time_when_redis_hangs(tenant):
    """A stopped (not dead) Redis: the probe answers 503 within the socket timeout, and
    ready again once Redis answers."""
    with RedisServer(persistent=False) as server:
        config = make_config(tenant, redis={"socket_timeout_s": 0.5})
        gw = await start_gateway(config, server.url)
        assert server.pid is not None
        try:
            async with aiohttp.ClientSession() as http:
                os.kill(server.pid, signal.SIGSTOP)
                try:
                    async with http.get(gw.admin_base + "/readyz") as response:
                        assert response.status == 503
                        body = await response.json()
                    assert "redis: no answer within 0.5 s" in body["problems"]
                finally:
                    os.kill(server.pid, signal.SIGCONT)
                await wait_until(lambda: _ready(http, gw.admin_base), timeout=15)
        finally:
            await gw.stop()


async def _ready(http: aiohttp.ClientSession, base: str) -> bool:
    async with http.get(base + "/readyz") as response:
        return response.status == 200
