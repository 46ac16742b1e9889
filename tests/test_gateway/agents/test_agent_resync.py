"""An agent socket resyncs (a fresh welcome on the same connection) when its process's node
bus is subscribed again after a loss, and instead of sending a ``message`` for a
conversation its client was never told of."""

from __future__ import annotations

from datetime import UTC, datetime

from harness import accept_offer, agent, agent_client, customer, make_config, running

from adapters.model import Message
from gateway.agents.protocol import MessageFrame


async def test_a_dropped_subscription_brings_a_fresh_welcome(tenant, redis_url):
    async with running(make_config(tenant, agents=[agent("alice")]), redis_url) as gw:
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello", client_msg_id="m1")
            conversation = await accept_offer(alice)
            await gw.services.bus.resubscribe()  # the subscriber's connection is gone
            welcome = await alice.expect("welcome", timeout=30)
            assert [c["id"] for c in welcome["conversations"]] == [conversation]
            assert welcome["conversations"][0]["messages"][0]["text"] == "hello"
            # Live delivery goes on after it.
            await visitor.send(type="message", text="after", client_msg_id="m2")
            frame = await alice.expect("message", conversation_id=conversation)
            assert frame["message"]["text"] == "after"


async def test_a_message_for_an_unknown_conversation_is_a_resync_not_a_frame(tenant, redis_url):
    async with running(make_config(tenant, agents=[agent("alice")]), redis_url) as gw:
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello", client_msg_id="m1")
            conversation = await accept_offer(alice)
            stray = Message(id="m-stray", direction="in", text="stray", sent_at=datetime.now(UTC))
            frame = MessageFrame(conversation_id="c-not-told", message=stray)
            await gw.services.sessions.deliver("alice", gw.services.node_id, frame)
            welcome = await alice.expect("welcome", timeout=30)
            assert [c["id"] for c in welcome["conversations"]] == [conversation]
            await visitor.send(type="message", text="after", client_msg_id="m2")
            await alice.expect("message", conversation_id=conversation)
            assert not [f for f in alice.frames if f.get("conversation_id") == "c-not-told"]
