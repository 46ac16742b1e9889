"""Redis Sentinel: a gateway configured with [redis] sentinels keeps a live web chat going
through `SENTINEL FAILOVER` (no restart), routes new conversations afterwards, and with
min_replica_acks = 1 every message it acknowledged is still there on the new master.
Real redis-server and redis-sentinel processes on loopback, started by the test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from chat_support import (
    Traffic,
    expect_text,
    keep_reading,
    readyz,
    send_until_stored,
    stored_texts,
    unready,
)
from harness import (
    accept_offer,
    admin_ready,
    agent,
    agent_client,
    customer,
    make_config,
    running,
)
from helpers import wait_until
from sentinel_support import DEADLINE_S, sentinel_set

from gateway.config import ConfigError, RedisConfig, parse_config
from gateway.redis.client import make_redis, open_clients
from gateway.redis.embedded import RedisServer, find_redis_server, pick_free_port
from gateway.redis.failover import NotSent

ADMIN_TOKEN = "admin-secret"
# Without min_replica_acks a coordinated failover loses what the old master acknowledged
# between the promotion and the gateways' reaction to +switch-master: about a second
# (docs/operations.md, "What a failover loses"); this bound leaves room for a busy machine.
LOSS_WINDOW_S = 5.0


def _config(tenant: str, sentinels: list[str], acks: int) -> Any:
    return make_config(
        tenant,
        agents=[agent("alice", capacity=5)],
        redis={
            "sentinels": sentinels,
            "min_replica_acks": acks,
            "min_replica_timeout_ms": 3000,
            "socket_timeout_s": 10.0,
        },
        routing={"recent_messages": 100_000},
        admin={"token": ADMIN_TOKEN},
    )


@pytest.mark.parametrize("acks", [0, 1], ids=["no-replica-acks", "min_replica_acks=1"])
async def test_failover_during_a_web_chat(tenant: str, acks: int) -> None:
    with sentinel_set(3) as sentinels:
        config = _config(tenant, sentinels.addresses, acks)
        # Two gateway processes' worth: the agent on one, the customer on the other, so that
        # every message also crosses the node bus, which must follow the master too.
        async with (
            running(config, "") as gateway,
            running(config, "") as other,
            agent_client(gateway, "alice") as alice,
            customer(other) as visitor,
        ):
            await visitor.send(type="message", text="hello", client_msg_id="c0")
            conversation = await accept_offer(alice)
            traffic = Traffic(visitor)
            sending = asyncio.create_task(traffic.run())
            reading = asyncio.create_task(keep_reading(alice))
            await wait_until(lambda: len(traffic.acked) >= 10, timeout=DEADLINE_S)
            statuses: list[int] = []

            async def probe() -> None:
                while True:
                    statuses.append((await readyz(gateway))[0])
                    await asyncio.sleep(0.05)

            probing = asyncio.create_task(probe())
            failover_started = time.monotonic()
            new_master = await asyncio.to_thread(sentinels.failover)
            before = len(traffic.acked)
            # Traffic goes on after the failover, without a restart.
            await wait_until(lambda: len(traffic.acked) >= before + 20, timeout=DEADLINE_S)
            traffic.stop.set()
            await sending
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
            for running_gateway in (gateway, other):
                await wait_until(lambda g=running_gateway: admin_ready(g.admin_port), timeout=60)
            assert 200 in statuses

            # Refused messages were refused for a reason the client can act on.
            codes = {frame["code"] for frame in traffic.refused}
            assert codes <= {"not_replicated"}, traffic.refused
            # The customer still reaches the agent, and the agent the customer.
            await send_until_stored(visitor, "after the failover", "x1")
            got = await expect_text(alice, "after the failover")
            assert got["conversation_id"] == conversation
            await alice.send(
                type="reply", conversation_id=conversation, text="still here", client_msg_id="r1"
            )
            ack = await alice.expect(("reply_ack", "error"), client_msg_id="r1")
            assert ack["type"] == "reply_ack", ack
            await expect_text(visitor, "still here")

            # A new conversation is routed.
            async with customer(gateway) as second:
                await send_until_stored(second, "new one", "n1")
                await alice.expect("offer", timeout=DEADLINE_S)

            # Where the data is now: the promoted replica.
            master = aioredis.Redis(port=new_master)
            try:
                assert (await master.info("replication"))["role"] == "master"
            finally:
                await master.aclose()
            stored = await stored_texts(gateway, conversation, ADMIN_TOKEN)
            lost = [text for text in traffic.acked if text not in stored]
            print(  # the figures docs/operations.md quotes, with pytest -s
                f"min_replica_acks={acks}: {len(traffic.acked)} acknowledged, "
                f"{len(traffic.refused)} refused, {len(lost)} acknowledged and lost"
            )
            if acks:
                assert not lost, f"acknowledged and lost in the failover: {lost}"
                assert "still here" in stored and "after the failover" in stored
            elif lost:
                # The loss is the window the docs describe: acknowledged after the failover
                # began, over a second or so, and nothing from before it.
                times = [traffic.acked_at[text] for text in lost]
                assert min(times) >= failover_started, "lost what was acknowledged before"
                window = max(times) - min(times)
                print(f"lost window {window:.2f} s")
                assert window <= LOSS_WINDOW_S, f"lost {len(lost)} over {window:.1f} s"


async def test_readyz_is_503_while_the_node_refuses_writes_and_200_after(
    tenant: str,
) -> None:
    """A master demoted to a replica still answers PING: readiness writes, and the gateway
    connects again (here to the same URL, as behind a proxy) once the node takes writes."""
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")
    with RedisServer(persistent=False) as node, RedisServer(persistent=False) as other:
        config = make_config(tenant, agents=[agent("alice")], redis={"socket_timeout_s": 10.0})
        async with running(config, node.url) as gateway:
            await wait_until(lambda: admin_ready(gateway.admin_port), timeout=DEADLINE_S)
            admin = aioredis.Redis(port=node.port)
            try:
                await admin.execute_command("REPLICAOF", "127.0.0.1", str(other.port))
                body = await wait_until(lambda: unready(gateway), timeout=DEADLINE_S)
                assert any("read only replica" in problem for problem in body["problems"]), body
                await admin.execute_command("REPLICAOF", "NO", "ONE")
                await wait_until(lambda: admin_ready(gateway.admin_port), timeout=DEADLINE_S)
                # And the gateway works on it again.
                async with agent_client(gateway, "alice") as alice, customer(gateway) as visitor:
                    await visitor.send(type="message", text="hi", client_msg_id="c1")
                    await visitor.expect("message", client_msg_id="c1", timeout=DEADLINE_S)
                    await accept_offer(alice)
            finally:
                await admin.aclose()


async def test_a_crashed_master_makes_readyz_503_until_the_sentinels_promote_the_replica(
    tenant: str,
) -> None:
    """SIGKILL, not a coordinated failover: no master takes writes until the sentinels
    agree it is down (down-after-milliseconds) and promote the replica. /readyz says so
    meanwhile, and then the same process, unrestarted, routes a new conversation."""
    with sentinel_set(3) as sentinels:
        config = _config(tenant, sentinels.addresses, 0)
        async with running(config, "") as gateway:
            await wait_until(lambda: admin_ready(gateway.admin_port), timeout=DEADLINE_S)
            old = sentinels.master_port()
            assert sentinels.master is not None and sentinels.master.pid is not None
            os.kill(sentinels.master.pid, signal.SIGKILL)
            body = await wait_until(lambda: unready(gateway), timeout=DEADLINE_S)
            assert any(problem.startswith("redis: ") for problem in body["problems"]), body
            await wait_until(lambda: admin_ready(gateway.admin_port), timeout=DEADLINE_S)
            assert await asyncio.to_thread(sentinels.master_port) != old
            async with agent_client(gateway, "alice") as alice, customer(gateway) as visitor:
                await send_until_stored(visitor, "after the crash", "c1")
                await accept_offer(alice, timeout=DEADLINE_S)


@pytest.mark.parametrize(
    ("redis", "key", "problem"),
    [
        ({"sentinels": ["10.0.0.5"]}, "sentinels", "not host:port"),
        ({"sentinels": ["10.0.0.5:99999"]}, "sentinels", "not host:port"),
        ({"sentinels": ["a:1"], "sentinel_master": " "}, "sentinel_master", "empty"),
        ({"min_replica_acks": -1}, "min_replica_acks", "negative"),
        ({"min_replica_timeout_ms": 0}, "min_replica_timeout_ms", "greater than 0"),
        (
            {"min_replica_acks": 1, "min_replica_timeout_ms": 6000},
            "min_replica_timeout_ms",
            "below",
        ),
    ],
)
def test_bad_sentinel_settings_are_named(redis: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config("t", redis=redis)
    assert caught.value.table == "redis" and caught.value.key == key
    assert problem in caught.value.problem


def test_sentinel_password_comes_from_the_environment() -> None:
    config = parse_config(
        {"redis": {"sentinels": ["127.0.0.1:26379"]}},
        "<test>",
        {},
        env={"ZHONGTAI_REDIS_SENTINEL_PASSWORD": "s3cret"},
    )
    assert config.redis.sentinel_password == "s3cret"


async def test_no_master_found_names_the_sentinels_and_no_password() -> None:
    config = RedisConfig(
        sentinels=[f"127.0.0.1:{pick_free_port()}"],
        sentinel_password="sentinel-pw-123",
        socket_timeout_s=0.5,
        connect_timeout_s=0.5,
    )
    clients = open_clients("redis://:data-pw-456@ignored:1/0", config)
    try:
        with pytest.raises(NotSent) as caught:
            await clients.redis.ping()
    finally:
        await clients.aclose()
    message = str(caught.value)
    assert f"No master found for 'mymaster' : {config.sentinels[0]} - " in message, message
    assert f"connecting to {config.sentinels[0]}" in message, message
    # Each sentinel by its address, not by the repr of redis-py's client and pool.
    assert "ConnectionPool" not in message and len(message) < 300, message
    assert "sentinel-pw-123" not in message and "data-pw-456" not in message, message


async def test_writes_refused_as_readonly_are_sent_again_once_the_node_takes_writes(
    tenant: str,
) -> None:
    """Refused with READONLY, a write certainly did not run: the client sends it again, on a
    new connection, until the node (or the master behind a proxy) takes writes, within
    socket_timeout_s; its caller sees only the delay."""
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")
    with RedisServer(persistent=False) as node, RedisServer(persistent=False) as other:
        client = make_redis(node.url, RedisConfig(socket_timeout_s=30.0))
        admin = aioredis.Redis(port=node.port)
        try:
            await client.ping()
            await admin.execute_command("REPLICAOF", "127.0.0.1", str(other.port))
            writes = [asyncio.create_task(client.incr(f"zt:{{{tenant}}}:n")) for _ in range(20)]
            done, _ = await asyncio.wait(writes, timeout=1.0)
            assert not done, "a write refused as READONLY reached its caller"
            await admin.execute_command("REPLICAOF", "NO", "ONE")
            results = await asyncio.wait_for(asyncio.gather(*writes), timeout=DEADLINE_S)
            assert sorted(results) == list(range(1, 21))  # each ran exactly once
        finally:
            await admin.aclose()
            await client.aclose()
