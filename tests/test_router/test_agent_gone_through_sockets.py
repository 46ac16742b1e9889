"""An agent gone for good (past the grace period, or set offline by a supervisor): which of
their conversations go to another agent (on_agent_gone), with their original enqueue time,
and the web chat customer told: through the agents' and customers' sockets and the admin
API."""

from __future__ import annotations

from typing import Any

import aiohttp
from harness import (
    Client,
    RunningGateway,
    accept_offer,
    agent,
    agent_client,
    customer,
    make_config,
    running,
)

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = {"sweep_interval_s": 0.05, "position_interval_s": 0.0}
# Short enough for a test, long enough that a busy machine does not expire a connected agent.
PRESENCE = {"grace_s": 0.3, "heartbeat_interval_s": 0.05}


async def admin(gw: RunningGateway, method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, gw.admin_base + path, json=body, headers=AUTH) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def view(gw: RunningGateway, conversation_id: str) -> dict[str, Any]:
    return await admin(gw, "GET", f"/api/conversations/{conversation_id}")


def config_for(tenant: str, **queue: Any) -> Any:
    return make_config(
        tenant,
        agents=[agent("alice"), agent("bob")],
        queues=[{"name": "general", **queue}],
        presence=PRESENCE,
        routing=FAST,
        admin={"token": TOKEN},
    )


async def answered_and_not(gw: RunningGateway, alice: Client, one: Client, two: Client):
    """alice takes both customers' conversations and answers the first only."""
    await one.send(type="message", text="first")
    answered = await accept_offer(alice)
    await two.send(type="message", text="second")
    unanswered = await accept_offer(alice)
    await alice.send(
        type="reply", conversation_id=answered, text="Hello, I am on it", client_msg_id="r1"
    )
    await alice.expect("reply_ack", client_msg_id="r1")
    enqueued = {c: (await view(gw, c))["route"]["enqueued_at"] for c in (answered, unanswered)}
    return answered, unanswered, enqueued


async def no_agent_left_so_far(visitor: Client) -> bool:
    """Whether the customer has had no agent_left frame: a message of theirs is echoed after
    anything sent to them before it."""
    await visitor.send(type="message", text="still here")
    while (await visitor.expect("message"))["message"]["text"] != "still here":
        pass
    return not [f for f in visitor.frames if f["type"] == "agent_left"]


async def test_keep_leaves_answered_conversations_with_the_agent_past_the_grace_period(
    tenant, redis_url
):
    config = config_for(tenant, on_agent_gone="keep")
    async with running(config, redis_url) as gw, customer(gw) as one, customer(gw) as two:
        async with agent_client(gw, "alice") as alice:
            answered, unanswered, enqueued = await answered_and_not(gw, alice, one, two)
        # alice's socket is gone; past the grace period the unanswered one goes to bob.
        assert (await two.expect("agent_left"))["reason"] == "agent_gone"
        async with agent_client(gw, "bob") as bob:
            offer = await bob.expect("offer")
            assert offer["conversation"]["id"] == unanswered
            requeued = await view(gw, unanswered)
            assert requeued["route"]["enqueued_at"] == enqueued[unanswered]
            kept = await view(gw, answered)
            assert kept["conversation"]["state"] == "assigned"
            assert kept["conversation"]["agent"] == "alice"
            assert kept["route"]["enqueued_at"] == enqueued[answered]
            assert kept["waiting_reason"] is None
            assert await no_agent_left_so_far(one)
        # It is alice's again when she comes back.
        async with agent_client(gw, "alice") as alice:
            welcome = next(f for f in alice.frames if f["type"] == "welcome")
            assert [c["id"] for c in welcome["conversations"]] == [answered]


async def test_a_chat_queue_requeues_answered_conversations_too_by_default(tenant, redis_url):
    config = config_for(tenant)  # a web chat queue: on_agent_gone is "requeue"
    async with running(config, redis_url) as gw, customer(gw) as one, customer(gw) as two:
        async with agent_client(gw, "alice") as alice:
            answered, unanswered, enqueued = await answered_and_not(gw, alice, one, two)
        for visitor in (one, two):
            assert (await visitor.expect("agent_left"))["reason"] == "agent_gone"
        async with agent_client(gw, "bob") as bob:
            offers = [await bob.expect("offer"), await bob.expect("offer")]
            # In their original order: the older one first, neither behind newer customers.
            assert [o["conversation"]["id"] for o in offers] == [answered, unanswered]
            for conv in (answered, unanswered):
                assert (await view(gw, conv))["route"]["enqueued_at"] == enqueued[conv]
            # The history goes with it: bob sees alice's answer.
            texts = [m["text"] for m in offers[0]["conversation"]["messages"]]
            assert "Hello, I am on it" in texts


async def test_a_supervisor_setting_an_agent_offline_hands_their_conversations_on(
    tenant, redis_url
):
    config = config_for(tenant, on_agent_gone="keep")
    async with (
        running(config, redis_url) as gw,
        customer(gw) as one,
        customer(gw) as two,
        agent_client(gw, "alice") as alice,
    ):
        answered, unanswered, enqueued = await answered_and_not(gw, alice, one, two)
        await admin(gw, "PUT", "/api/agents/alice/status", {"status": "offline"})
        # alice is still connected: she is told the unanswered one is no longer hers.
        closed = await alice.expect("closed", conversation_id=unanswered)
        assert closed["reason"] == "agent_offline"
        assert (await alice.expect("status"))["status"] == "offline"
        assert (await two.expect("agent_left"))["reason"] == "agent_gone"
        async with agent_client(gw, "bob") as bob:
            offer = await bob.expect("offer")
            assert offer["conversation"]["id"] == unanswered
            assert (await view(gw, unanswered))["route"]["enqueued_at"] == enqueued[unanswered]
            kept = await view(gw, answered)
            assert (kept["conversation"]["state"], kept["conversation"]["agent"]) == (
                "assigned",
                "alice",
            )
            assert await no_agent_left_so_far(one)
