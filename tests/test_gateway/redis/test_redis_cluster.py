"""Redis Cluster: gateways configured with [redis] cluster_nodes keep each tenant in its own
slot on a 3-master cluster, carry a conversation end to end between two processes over
sharded pub/sub, and keep a live web chat going through a reshard of the tenant's slot
(nothing lost, no socket dropped). Real redis-server processes on loopback, joined by
`redis-cli --cluster create`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import redis.asyncio as aioredis
from chat_support import (
    Traffic,
    expect_text,
    keep_reading,
    send_until_stored,
    stored_texts,
    unready,
)
from cluster_support import HOST, ClusterSet, cluster_set
from harness import accept_offer, admin_ready, agent, agent_client, customer, make_config, running
from helpers import wait_until
from sentinel_support import DEADLINE_S

from gateway.config import ConfigError
from gateway.redis.client import make_redis
from gateway.redis.cluster import NotOwner, tenant_slot

ADMIN_TOKEN = "admin-secret"


def _config(tenant: str, nodes: list[str]) -> Any:
    return make_config(
        tenant,
        agents=[agent("alice", capacity=5)],
        redis={"cluster_nodes": nodes, "socket_timeout_s": 10.0},
        routing={"recent_messages": 100_000},
        admin={"token": ADMIN_TOKEN},
    )


def _tenant_elsewhere(cluster: ClusterSet, tenant: str) -> str:
    """A second tenant whose slot is on another master than ``tenant``'s."""
    mine = cluster.tenant_owner(tenant)
    return next(
        other for i in range(1000) if cluster.tenant_owner(other := f"{tenant}x{i}") != mine
    )


async def _node_info(port: int, section: str) -> dict[str, Any]:
    node = aioredis.Redis(host=HOST, port=port, decode_responses=True)
    try:
        return dict(await node.info(section))
    finally:
        await node.aclose()


async def _shard_channels(port: int, tenant: str) -> list[str]:
    node = aioredis.Redis(host=HOST, port=port, decode_responses=True)
    try:
        return list(
            await node.execute_command("PUBSUB", "SHARDCHANNELS", f"zt:{{{tenant}}}:node:*")
        )
    finally:
        await node.aclose()


async def _conversation(agent_gateway: Any, customer_gateway: Any, tag: str) -> None:
    """A customer on one process, the agent on the other: offer, accept, and a reply each
    way, every frame crossing the node bus."""
    async with (
        agent_client(agent_gateway, "alice") as alice,
        customer(customer_gateway) as visitor,
    ):
        await send_until_stored(visitor, f"hello from {tag}", "c1")
        conversation = await accept_offer(alice, timeout=DEADLINE_S)
        await visitor.send(type="message", text=f"more from {tag}", client_msg_id="c2")
        got = await expect_text(alice, f"more from {tag}")
        assert got["conversation_id"] == conversation
        await alice.send(
            type="reply", conversation_id=conversation, text=f"answer {tag}", client_msg_id="r1"
        )
        ack = await alice.expect(("reply_ack", "error"), client_msg_id="r1", timeout=DEADLINE_S)
        assert ack["type"] == "reply_ack", ack
        await expect_text(visitor, f"answer {tag}")


async def test_two_tenants_each_a_conversation_across_two_processes(tenant: str) -> None:
    with cluster_set(3) as cluster:
        second = _tenant_elsewhere(cluster, tenant)
        owners = {t: cluster.tenant_owner(t) for t in (tenant, second)}
        assert len(set(owners.values())) == 2  # the tenants spread over the masters
        for name in (tenant, second):
            # One node named: the rest of the cluster is learnt from it.
            config = _config(name, [cluster.addresses[0]])
            async with running(config, "") as one, running(config, "") as two:
                for gateway in (one, two):
                    await wait_until(lambda g=gateway: admin_ready(g.admin_port), timeout=60)
                await _conversation(one, two, name)
                # Each process listens on a shard channel on the master of its tenant's slot.
                channels = await _shard_channels(owners[name], name)
                assert {f"zt:{{{name}}}:node:{g.services.node_id}" for g in (one, two)} <= set(
                    channels
                )
        # Every key of a tenant in its slot, on its master.
        for name, port in owners.items():
            node = cluster.node(port)
            assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", tenant_slot(name)) > 0
        # Cross-process delivery went by SPUBLISH, and never by the cluster-wide PUBLISH.
        stats = {port: await _node_info(port, "commandstats") for port in cluster.ports}
        for port in owners.values():
            assert stats[port].get("cmdstat_spublish", {}).get("calls", 0) > 0, stats[port]
        assert not any("cmdstat_publish" in s for s in stats.values()), stats


async def test_a_live_reshard_of_the_tenants_slot_loses_nothing(tenant: str) -> None:
    with cluster_set(3) as cluster:
        config = _config(tenant, cluster.addresses)
        slot = tenant_slot(tenant)
        source = cluster.owner(slot)
        target = next(port for port in cluster.ports if port != source)
        async with (
            running(config, "") as gateway,
            running(config, "") as other,
            agent_client(gateway, "alice") as alice,
            customer(other) as visitor,
        ):
            await send_until_stored(visitor, "hello", "c0")
            conversation = await accept_offer(alice, timeout=DEADLINE_S)
            traffic = Traffic(visitor)
            sending = asyncio.create_task(traffic.run())
            reading = asyncio.create_task(keep_reading(alice))
            await wait_until(lambda: len(traffic.acked) >= 10, timeout=DEADLINE_S)
            moved = await asyncio.to_thread(cluster.reshard, slot, target)
            assert moved > 0
            before = len(traffic.acked)
            await wait_until(lambda: len(traffic.acked) >= before + 20, timeout=DEADLINE_S)
            traffic.stop.set()
            await sending
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

            assert not traffic.refused, traffic.refused
            # The traffic met the move (MOVED or ASK followed) rather than missing it.
            assert any(g.services.redis.route.redirections for g in (gateway, other))
            # No socket was dropped: both still open, and still carrying the conversation.
            assert alice.ws.close_code is None and visitor.ws.close_code is None
            await send_until_stored(visitor, "after the reshard", "x1")
            got = await expect_text(alice, "after the reshard")
            assert got["conversation_id"] == conversation
            await alice.send(
                type="reply", conversation_id=conversation, text="still here", client_msg_id="r1"
            )
            ack = await alice.expect(("reply_ack", "error"), client_msg_id="r1")
            assert ack["type"] == "reply_ack", ack
            await expect_text(visitor, "still here")

            # Everything acknowledged is stored, and the slot's keys are on the new master.
            stored = await stored_texts(gateway, conversation, ADMIN_TOKEN)
            lost = [text for text in traffic.acked if text not in stored]
            assert not lost, f"acknowledged and lost in the reshard: {lost}"
            assert cluster.node(source).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
            assert cluster.node(target).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) > 0
            # The node bus followed the slot: its shard channels are on the new master.
            names = {f"zt:{{{tenant}}}:node:{g.services.node_id}" for g in (gateway, other)}

            async def subscribed_on_target() -> bool:
                return names <= set(await _shard_channels(target, tenant))

            await wait_until(subscribed_on_target, timeout=DEADLINE_S)
            for running_gateway in (gateway, other):
                await wait_until(lambda g=running_gateway: admin_ready(g.admin_port), timeout=60)


async def test_readyz_is_503_while_the_slot_has_no_master_and_200_after(tenant: str) -> None:
    with cluster_set(3) as cluster:
        config = _config(tenant, cluster.addresses)
        slot = tenant_slot(tenant)
        owner = cluster.node(cluster.owner(slot))
        async with running(config, "") as gateway:
            await wait_until(lambda: admin_ready(gateway.admin_port), timeout=60)
            owner.execute_command("CLUSTER", "DELSLOTS", slot)
            body = await wait_until(lambda: unready(gateway), timeout=DEADLINE_S)
            assert any("slot not served" in problem for problem in body["problems"]), body
            owner.execute_command("CLUSTER", "ADDSLOTS", slot)
            await wait_until(lambda: admin_ready(gateway.admin_port), timeout=DEADLINE_S)


async def test_a_node_that_does_not_own_the_slot_says_so(tenant: str) -> None:
    """Pointed at one node with url and no cluster_nodes: an error that says what to do,
    not a bare MOVED."""
    with cluster_set(3) as cluster:
        elsewhere = next(p for p in cluster.ports if p != cluster.tenant_owner(tenant))
        client = make_redis(
            f"redis://{HOST}:{elsewhere}/0", _config(tenant, []).redis, None, tenant
        )
        try:
            with pytest.raises(NotOwner) as caught:
                await client.set(f"zt:{{{tenant}}}:probe", b"1")
        finally:
            await client.aclose()
        message = str(caught.value)
        assert f"this node does not own tenant {tenant!r}'s slot" in message, message
        assert "configure [redis] cluster_nodes" in message, message


@pytest.mark.parametrize(
    ("redis", "problem"),
    [
        ({"cluster_nodes": ["10.0.0.5"]}, "not host:port"),
        ({"cluster_nodes": ["10.0.0.5:0"]}, "not host:port"),
        ({"cluster_nodes": ["a:1"], "sentinels": ["b:2"]}, "cannot be used with sentinels"),
    ],
)
def test_bad_cluster_settings_are_named(redis: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config("t", redis=redis)
    assert caught.value.table == "redis" and caught.value.key == "cluster_nodes"
    assert problem in caught.value.problem
