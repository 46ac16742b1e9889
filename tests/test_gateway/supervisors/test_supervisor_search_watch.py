"""Searching and watching conversations on the supervisor socket: every filter, AND-ed; a
watched conversation's customer messages and agent replies arriving live; and a lead of one
queue kept to it."""

from __future__ import annotations

from harness import accept_offer, agent_client, customer
from supervisor_support import centre, lead


async def say(visitor, text: str) -> str:
    """A customer's message, once stored: the id of its conversation (from the echo)."""
    await visitor.send(type="message", text=text)
    return (await visitor.expect("message"))["conversation_id"]


async def search(lin, request_id: str, **filters) -> list[str]:
    await lin.send(type="search", request_id=request_id, **filters)
    found = await lin.expect("search_results", request_id=request_id)
    return [c["id"] for c in found["conversations"]]


async def test_search_by_text_customer_agent_queue_and_channel(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as one,
        customer(gw) as two,
        lead(gw, "tok-lin") as (lin, _),
    ):
        await one.send(type="message", text="hello there")
        general = await accept_offer(alice)
        billing = await say(two, "About my INVOICE")
        await lin.send(type="search", request_id="all")
        everything = (await lin.expect("search_results", request_id="all"))["conversations"]
        by_id = {c["id"]: c for c in everything}
        assert set(by_id) == {general, billing}
        assert by_id[general]["state"] == "assigned" and by_id[general]["agent"] == "alice"
        assert by_id[general]["queue"] == "general" and by_id[general]["channel"] == "webchat"
        assert by_id[general]["last_text"] == "hello there"
        assert by_id[billing]["state"] == "waiting" and by_id[billing]["agent"] is None
        assert by_id[billing]["queue"] == "billing"
        assert by_id[billing]["enqueued_ms"] > 0

        assert await search(lin, "t1", text="invoice") == [billing]
        assert await search(lin, "t2", text="HELLO") == [general]
        assert await search(lin, "q", queue="bill") == [billing]
        assert sorted(await search(lin, "ch", channel="WebChat")) == sorted([general, billing])
        assert await search(lin, "ch2", channel="email") == []
        assert await search(lin, "a1", agent="alice") == [general]
        assert await search(lin, "a2", agent="Ali") == [general]  # the display name too
        customer_id = by_id[billing]["customer"]["id"]
        assert await search(lin, "c", customer=customer_id[2:].upper()) == [billing]
        assert await search(lin, "and", text="invoice", queue="general") == []


async def test_watch_shows_customer_messages_and_agent_replies_live(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
        lead(gw, "tok-lin") as (lin, _),
    ):
        await visitor.send(type="message", text="hello there")
        conversation_id = await accept_offer(alice)
        await lin.send(type="watch", conversation_id=conversation_id)
        watching = await lin.expect("watching", conversation_id=conversation_id)
        assert watching["conversation"]["agent"] == "alice"
        assert watching["messages"][0]["text"] == "hello there"
        assert watching["notes"] == []

        await visitor.send(type="message", text="are you there?")
        live = await lin.expect("message", conversation_id=conversation_id)
        assert (live["message"]["direction"], live["message"]["text"]) == ("in", "are you there?")

        await alice.send(
            type="reply", conversation_id=conversation_id, text="yes, here", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        reply = await lin.expect("message", conversation_id=conversation_id)
        assert reply["message"]["direction"] == "out"
        assert (reply["message"]["text"], reply["message"]["author"]) == ("yes, here", "alice")

        await lin.send(type="unwatch", conversation_id=conversation_id)
        await lin.expect("unwatched", conversation_id=conversation_id)
        await visitor.send(type="message", text="after the unwatch")
        await alice.expect("message", conversation_id=conversation_id)
        await lin.send(type="ping")
        await lin.expect("pong")
        assert not [f for f in lin.frames if f["type"] == "message" and not f.get("_read")]

        await lin.send(type="watch", conversation_id=conversation_id)
        await lin.expect("watching", conversation_id=conversation_id)
        await alice.send(type="close", conversation_id=conversation_id)
        closed = await lin.expect("closed", conversation_id=conversation_id)
        assert closed["reason"] == "closed_by_agent"


async def test_watch_refuses_unknown_and_out_of_scope_conversations(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        customer(gw) as visitor,
        lead(gw, "tok-gail") as (gail, _),
        lead(gw, "tok-lin") as (lin, _),
    ):
        billing = await say(visitor, "my invoice is wrong")

        await gail.send(type="watch", conversation_id="nope")
        error = await gail.expect("error")
        assert (error["code"], error["field"]) == ("unknown_conversation", "conversation_id")
        await gail.send(type="watch", conversation_id=billing)
        error = await gail.expect("error")
        assert (error["code"], error["field"]) == ("out_of_scope", "conversation_id")
        # Gail's search leaves out the queue she does not lead.
        await gail.send(type="search", request_id="g", text="invoice")
        assert (await gail.expect("search_results", request_id="g"))["conversations"] == []
        # Her refused watch sends her nothing live.
        await visitor.send(type="message", text="hello?")
        await lin.send(type="watch", conversation_id=billing)
        await lin.expect("watching")
        await gail.send(type="ping")
        await gail.expect("pong")
        assert not [f for f in gail.frames if f["type"] in ("message", "watching")]
