"""[redis] min_replica_acks: a customer message and an agent reply are acknowledged only once a
replica has them; without one in time the sender is told not_replicated, and the same message
sent again once a replica is back is acknowledged, stored once."""

from __future__ import annotations

import aiohttp
import pytest
import redis as sync_redis
from harness import accept_offer, agent, agent_client, customer, make_config, running
from helpers import wait_until

from gateway.redis.embedded import RedisServer, find_redis_server

DEADLINE_S = 30.0


@pytest.fixture
def redis_binary() -> None:
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")


def _config(tenant: str) -> object:
    return make_config(
        tenant,
        agents=[agent("alice")],
        redis={"min_replica_acks": 1, "min_replica_timeout_ms": 2000},
        admin={"token": "adm"},
    )


async def _metric(admin_port: int, name: str) -> float:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{admin_port}/metrics") as response,
    ):
        text = await response.text()
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(values[0]) if values else 0.0


@pytest.mark.usefixtures("redis_binary")
async def test_not_replicated_until_a_replica_confirms(tenant: str) -> None:
    with RedisServer(persistent=False) as master:
        async with (
            running(_config(tenant), master.url) as gateway,
            agent_client(gateway, "alice") as alice,
            customer(gateway) as visitor,
        ):
            # No replica: stored (the agent is offered it) but not acknowledged.
            await visitor.send(type="message", text="hello", client_msg_id="c1")
            refused = await visitor.expect("error", client_msg_id="c1", timeout=DEADLINE_S)
            assert refused["code"] == "not_replicated"
            conversation = await accept_offer(alice)
            await alice.send(
                type="reply", conversation_id=conversation, text="hi", client_msg_id="r1"
            )
            error = await alice.expect("error", client_msg_id="r1", timeout=DEADLINE_S)
            assert error["code"] == "not_replicated"
            assert await _metric(gateway.admin_port, "zhongtai_replica_ack_timeouts_total") >= 2

            with RedisServer(
                persistent=False, extra_args=["--replicaof", "127.0.0.1", str(master.port)]
            ) as replica:
                link = sync_redis.Redis(port=replica.port, decode_responses=True)
                await wait_until(
                    lambda: link.info("replication").get("master_link_status") == "up",
                    timeout=DEADLINE_S,
                )
                # Sent again, the same ids: acknowledged now, and stored once.
                await visitor.send(type="message", text="hello", client_msg_id="c1")
                echo = await visitor.expect(
                    ("message", "error"), client_msg_id="c1", timeout=DEADLINE_S
                )
                assert echo["type"] == "message" and echo["message"]["text"] == "hello", echo
                await alice.send(
                    type="reply", conversation_id=conversation, text="hi", client_msg_id="r1"
                )
                ack = await alice.expect(
                    ("reply_ack", "error"), client_msg_id="r1", timeout=DEADLINE_S
                )
                assert ack["type"] == "reply_ack", ack
                await visitor.send(type="message", text="thanks", client_msg_id="c2")
                await visitor.expect("message", client_msg_id="c2", timeout=DEADLINE_S)
                headers = {"Authorization": "Bearer adm"}
                url = f"{gateway.admin_base}/api/conversations/{conversation}"
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(url, headers=headers) as response,
                ):
                    body = await response.json()
                texts = [m["text"] for m in body["conversation"]["messages"]]
                assert texts.count("hello") == 1 and texts.count("hi") == 1, texts
                assert "thanks" in texts
