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


async def test_a_resync_reaches_back_past_the_recent_messages_to_the_first_missed(
    tenant, redis_url
):
    """Alice's socket is on one process and the visitor's on another, so the visitor's
    messages reach alice through the node bus; eight of them are lost on the way (as
    during a Redis outage) while only three recent ones come with a conversation."""
    config = make_config(tenant, agents=[agent("alice")], routing={"recent_messages": 3})
    async with running(config, redis_url) as near, running(config, redis_url) as far:
        async with agent_client(near, "alice") as alice, customer(far) as visitor:
            await visitor.send(type="message", text="hello", client_msg_id="m0")
            conversation = await accept_offer(alice)
            bus = near.services.bus
            deliver = bus._handlers["agent"]  # this process's delivery of agent frames

            async def lost(payload: bytes) -> None:
                pass

            bus.on("agent", lost)
            missed = [f"missed {i}" for i in range(1, 9)]
            for i, text in enumerate(missed, 1):
                await visitor.send(type="message", text=text, client_msg_id=f"m{i}")
                await visitor.expect("message", client_msg_id=f"m{i}")  # stored
            bus.on("agent", deliver)
            await bus.resubscribe()
            welcome = await alice.expect("welcome", timeout=30)
            [held] = welcome["conversations"]
            assert held["id"] == conversation
            assert [m["text"] for m in held["messages"]] == missed
            # A second resync with nothing missed shows the recent ones again.
            await bus.resubscribe()
            again = await alice.expect("welcome", timeout=30)
            assert [m["text"] for m in again["conversations"][0]["messages"]] == missed[-3:]
