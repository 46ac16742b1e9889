"""One web chat conversation end to end, through real sockets and a real Redis."""

from __future__ import annotations

import json

import pytest
from harness import agent, agent_client, customer, make_config, running


@pytest.fixture
def config(tenant: str):
    return make_config(
        tenant,
        agents=[agent("alice", capacity=1), agent("bob", capacity=1)],
        routing={"offer_timeout_s": 30.0},
    )


async def test_message_offer_accept_reply_round_trip(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="你好, my order is late", client_msg_id="c1")
            echo = await visitor.expect("message")
            assert echo["message"]["direction"] == "in"
            await visitor.expect("queue", position=1)

            offer = await alice.expect("offer")
            conversation = offer["conversation"]
            assert conversation["channel"] == "webchat"
            assert conversation["messages"][-1]["text"] == "你好, my order is late"
            assert offer["expires_in_s"] == 30.0

            await alice.send(type="accept", offer_id=offer["offer_id"])
            assigned = await alice.expect("assigned")
            assert assigned["conversation"]["state"] == "assigned"
            assert assigned["conversation"]["agent"] == "alice"
            await visitor.expect("agent", name="Agent")

            await alice.send(
                type="reply",
                conversation_id=conversation["id"],
                text="Let me check",
                client_msg_id="r1",
            )
            ack = await alice.expect("reply_ack", client_msg_id="r1")
            reply = await visitor.expect("message")
            assert reply["message"]["text"] == "Let me check"
            assert reply["message"]["id"] == ack["message_id"]

            await visitor.send(type="message", text="thanks")
            follow_up = await alice.expect("message", conversation_id=conversation["id"])
            assert follow_up["message"]["text"] == "thanks"


async def test_decline_offers_to_the_next_agent(config, redis_url):
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="hello")
        # Ties go to the agent idle longest, then by id: alice first.
        offer = await alice.expect("offer")
        await alice.send(type="decline", offer_id=offer["offer_id"], reason="busy")
        second = await bob.expect("offer")
        assert second["conversation"]["id"] == offer["conversation"]["id"]
        assert second["offer_id"] != offer["offer_id"]


async def test_offer_timeout_offers_to_the_next_agent(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice"), agent("bob")],
        routing={"offer_timeout_s": 0.3, "sweep_interval_s": 0.05},
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="anyone?")
        offer = await alice.expect("offer")
        revoked = await alice.expect("offer_revoked", offer_id=offer["offer_id"])
        assert revoked["reason"] == "timeout"
        second = await bob.expect("offer")
        assert second["conversation"]["id"] == offer["conversation"]["id"]
        # A late accept of the expired offer is refused, not silently applied.
        await alice.send(type="accept", offer_id=offer["offer_id"])
        error = await alice.expect("error")
        assert error["code"] == "unknown_offer"


async def test_close_frees_capacity_for_the_next_waiting_conversation(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        async with customer(gw) as first, customer(gw) as second:
            await first.send(type="message", text="first")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await second.send(type="message", text="second")
            await second.expect("queue", position=1)

            conversation_id = offer["conversation"]["id"]
            await alice.send(type="close", conversation_id=conversation_id)
            closed = await alice.expect("closed", conversation_id=conversation_id)
            assert closed["reason"] == "closed_by_agent"
            await first.expect("closed")
            next_offer = await alice.expect("offer")
            assert next_offer["conversation"]["messages"][0]["text"] == "second"


async def test_visitor_resumes_with_token_and_unknown_token_starts_fresh(config, redis_url):
    async with running(config, redis_url) as gw:
        async with customer(gw) as visitor:
            welcome = visitor.frames[0]
            token = welcome["visitor_token"]
            await visitor.send(type="message", text="remember me")
            echo = await visitor.expect("message")
        async with customer(gw, visitor_token=token) as again:
            welcome = again.frames[0]
            assert welcome["visitor_token"] == token
            assert welcome["conversation_id"] == echo["conversation_id"]
            assert [m["text"] for m in welcome["messages"]] == ["remember me"]
        async with customer(gw, visitor_token="guessed-token") as stranger:
            welcome = stranger.frames[0]
            assert welcome["visitor_token"] != token
            assert welcome.get("conversation_id") is None
            assert welcome["messages"] == []


@pytest.mark.parametrize(
    ("fields", "conversations", "shown"),
    [
        ({"name": "Alice Wang"}, None, "Alice Wang"),
        ({"name": "Alice Wang", "shown_as": "小美"}, None, "小美"),
        ({}, None, "Agent"),
        ({}, {"unnamed_agent": "客服"}, "客服"),
    ],
)
async def test_live_and_after_a_reload_the_customer_sees_a_name_never_the_id(
    tenant, redis_url, fields, conversations, shown
):
    config = make_config(
        tenant,
        agents=[agent("alice-7", capacity=1, **fields)],
        conversations=conversations,
        canned_replies=[{"id": "hi", "text": "This is {agent_name}."}],
    )
    async with running(config, redis_url) as gw, agent_client(gw, "alice-7") as alice:
        assert alice.frames[0]["agent"]["shown_as"] == shown  # for {agent_name}
        async with customer(gw) as visitor:
            token = visitor.frames[0]["visitor_token"]
            await visitor.send(type="message", text="hello", client_msg_id="c1")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await visitor.expect("agent", name=shown)
            conversation_id = offer["conversation"]["id"]
            await alice.send(
                type="reply", conversation_id=conversation_id, text="hi", client_msg_id="r1"
            )
            live = await visitor.expect("message", conversation_id=conversation_id)
            while live["message"]["direction"] != "out":
                live = await visitor.expect("message", conversation_id=conversation_id)
            assert live["message"]["author"] == shown
            seen_live = [json.dumps(f, ensure_ascii=False) for f in visitor.frames]
        async with customer(gw, visitor_token=token) as again:
            welcome = again.frames[0]
            assert welcome["agent_name"] == shown
            replies = [m for m in welcome["messages"] if m["direction"] == "out"]
            assert [m["text"] for m in replies] == ["hi"]
            assert all(m.get("author") in (shown, None) for m in replies), replies
            seen_after = [json.dumps(f, ensure_ascii=False) for f in again.frames]
    for frame in seen_live + seen_after:
        assert "alice-7" not in frame, frame
