"""Presence: status changes route work, dead gateway processes release their agents, and the
gateway works over a unix socket URL."""

from __future__ import annotations

from harness import agent, agent_client, customer, make_config, running

from gateway.redis.embedded import RedisServer
from presence.registry import Presence


async def test_becoming_available_brings_the_waiting_conversation(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice")])
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await alice.send(type="set_status", status="away")
        await alice.expect("status", status="away")
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="anyone there?")
            await visitor.expect("queue", position=1)
            await alice.send(type="set_status", status="available")
            offer = await alice.expect("offer")
            assert offer["conversation"]["messages"][0]["text"] == "anyone there?"


async def test_unknown_status_is_refused(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice")])
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await alice.send(type="set_status", status="sleeping")
        assert (await alice.expect("error"))["code"] == "bad_status"


async def test_a_dead_processes_agents_are_disconnected(redis, tenant):
    presence = Presence(redis, tenant)
    await presence.connect("alice", "node-dead", "conn-1", "available")
    await presence.connect("bob", "node-live", "conn-2", "available")
    await presence.heartbeat("node-dead", 1_000)
    await presence.heartbeat("node-live", 20_000)
    assert await presence.reap_dead_nodes(now_ms=21_000, node_ttl_ms=15_000) == ["alice"]
    assert await presence.node_of("alice") is None
    assert await presence.node_of("bob") == "node-live"
    assert await redis.smembers(presence.keys.available) == {b"bob"}
    # The grace period starts when the process was found dead.
    assert await redis.hget(presence.keys.disconnected_at, "alice") == b"21000"


async def test_a_late_disconnect_of_a_replaced_connection_changes_nothing(redis, tenant):
    presence = Presence(redis, tenant)
    await presence.connect("alice", "node-1", "old", "available")
    await presence.connect("alice", "node-2", "new", "available")
    assert not await presence.disconnect("alice", "old", 5)
    assert await presence.node_of("alice") == "node-2"


async def test_gateway_on_a_unix_socket_redis(tenant, tmp_path):
    with RedisServer(data_dir=tmp_path, unix_socket=True) as server:
        assert server.url.startswith("unix://")
        config = make_config(tenant, agents=[agent("alice")])
        async with running(config, server.url) as gw, agent_client(gw, "alice") as alice:
            async with customer(gw) as visitor:
                await visitor.send(type="message", text="over a unix socket")
                await alice.expect("offer")
