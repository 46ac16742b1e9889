"""The agent protocol's additions over real sockets: canned replies and close reasons in the
welcome, internal notes that follow a conversation through a transfer and never reach the
customer, closes with a reason (refused when not configured; counted in the metric), and
the customer's earlier conversations."""

from __future__ import annotations

import pytest
from harness import agent, agent_client, make_config, running
from helpers import wait_until
from obs_support import scrape_text
from prometheus_client.parser import text_string_to_metric_families

from adapters.fake import FakeAdapter

CANNED = [
    {"id": "hi", "title": "Greeting", "text": "Hello {customer_name}, I am {agent_name}."},
    {"id": "bill", "text": "Your invoice is on its way.", "queues": ["general"]},
]


@pytest.fixture
def config(tenant: str):
    agents = [agent(a) | {"name": a.title(), "capacity": {"fake": 3}} for a in ("alice", "bob")]
    return make_config(
        tenant,
        agents=agents,
        fake={},
        canned_replies=CANNED,
        conversations={"close_reasons": ["resolved", "spam"]},
        routing={"offer_timeout_s": 60.0},
    )


def fake_of(gw) -> FakeAdapter:
    adapter = gw.services.adapters["fake"]
    assert isinstance(adapter, FakeAdapter)
    return adapter


async def take(socket) -> str:
    offer = await socket.expect("offer")
    wanted = offer["conversation"]["id"]
    await socket.send(type="accept", offer_id=offer["offer_id"])
    # Matched by id: an earlier conversation's assigned frame may still be unread.
    assigned = await socket.expect("assigned")
    while assigned["conversation"]["id"] != wanted:
        assigned = await socket.expect("assigned")
    return wanted


def closed_count(text: str, close_reason: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "zhongtai_conversations_closed_total"
        and sample.labels.get("close_reason") == close_reason
    )


async def test_the_welcome_lists_canned_replies_and_close_reasons(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        welcome = alice.frames[0]
        assert welcome["close_reasons"] == ["resolved", "spam"]
        assert welcome["queue_sla_s"] == {"general": 60.0}
        assert welcome["canned_replies"] == [
            {"id": "hi", "title": "Greeting", "text": CANNED[0]["text"], "queues": []},
            {"id": "bill", "title": "bill", "text": CANNED[1]["text"], "queues": ["general"]},
        ]


async def test_a_note_follows_the_conversation_through_a_transfer(config, redis_url):
    async with running(config, redis_url) as gw:
        fake = fake_of(gw)
        async with agent_client(gw, "alice") as alice, agent_client(gw, "bob") as bob:
            await bob.send(type="set_status", status="away")
            await bob.expect("status", status="away")
            await fake.receive("my order is broken", customer_id="c1", customer_name="Li")
            conv = await take(alice)
            await alice.send(type="note", conversation_id=conv, text="  VIP, be kind  ")
            added = await alice.expect("note", conversation_id=conv)
            assert added["note"]["text"] == "VIP, be kind"
            assert added["note"]["author"] == {"id": "alice", "name": "Alice"}
            assert added["note"]["at_ms"] > 0 and added["note"]["id"]

            # Bob may not write in Alice's conversation, and an empty note is refused.
            await bob.send(type="note", conversation_id=conv, text="mine now")
            error = await bob.expect("error")
            assert error["code"] == "not_yours" and error["conversation_id"] == conv
            await alice.send(type="note", conversation_id=conv, text="   ")
            error = await alice.expect("error")
            assert error["code"] == "bad_frame" and error["field"] == "text"

            await bob.send(type="set_status", status="available")
            await bob.expect("status", status="available")
            await alice.send(
                type="transfer", conversation_id=conv, to_agent="bob", note="refund approved"
            )
            await alice.expect("closed", conversation_id=conv, reason="transferred")
            offer = await bob.expect("offer")
            assert [n["text"] for n in offer["notes"]] == ["VIP, be kind", "refund approved"]
            assert offer["notes"][1]["author"]["id"] == "alice"
            await bob.send(type="accept", offer_id=offer["offer_id"])
            assigned = await bob.expect("assigned")
            assert [n["text"] for n in assigned["notes"]] == ["VIP, be kind", "refund approved"]
            await bob.send(type="note", conversation_id=conv, text="called the courier")
            await bob.expect("note", conversation_id=conv)
        # Bob comes back: the welcome carries the notes of what he holds.
        async with agent_client(gw, "bob") as again:
            notes = again.frames[0]["notes"][conv]
            assert [n["text"] for n in notes][-1] == "called the courier"
        # Never to the customer.
        assert not [o for o in fake.sent if "VIP" in o.text or "courier" in o.text]

        # Purged with the conversation's other data.
        router = gw.services.router
        await gw.services.actions.close(None, conv)
        assert await router.redis.exists(router.keys.notes(conv))
        await wait_until(lambda: router.purge_closed(gw.services.switchboard.clock() + 1, 0))
        assert not await router.redis.exists(router.keys.notes(conv))


async def test_close_with_a_reason_is_counted_and_a_bad_one_refused(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = fake_of(gw)
        await fake.receive("spam spam", customer_id="c2")
        conv = await take(alice)
        await alice.send(type="close", conversation_id=conv, reason="lunch")
        error = await alice.expect("error")
        assert error["code"] == "bad_close_reason" and error["field"] == "reason"
        assert error["conversation_id"] == conv
        await alice.send(type="close", conversation_id=conv, reason="spam")
        await alice.expect("closed", conversation_id=conv, reason="closed_by_agent")
        text = await scrape_text(gw.admin_base)
        assert closed_count(text, "spam") == 1
        assert closed_count(text, "lunch") == 0 and closed_count(text, "other") == 0

        # A close without a reason (an older client) is still fine.
        await fake.receive("hello again", customer_id="c3")
        conv = await take(alice)
        await alice.send(type="close", conversation_id=conv)
        await alice.expect("closed", conversation_id=conv)
        assert closed_count(await scrape_text(gw.admin_base), "none") == 1


async def test_free_reasons_are_bounded_to_other_in_the_metric(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice") | {"capacity": {"fake": 3}}], fake={})
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        assert alice.frames[0]["close_reasons"] == []
        await fake_of(gw).receive("hi", customer_id="c4")
        conv = await take(alice)
        await alice.send(type="close", conversation_id=conv, reason="customer said thanks")
        await alice.expect("closed", conversation_id=conv)
        assert closed_count(await scrape_text(gw.admin_base), "other") == 1


async def test_history_lists_the_customers_earlier_conversations(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = fake_of(gw)
        await fake.receive("where is parcel 4471?", customer_id="c5", customer_name="Wang")
        first = await take(alice)
        await alice.send(type="reply", conversation_id=first, text="On its way", client_msg_id="1")
        await alice.expect("reply_ack", client_msg_id="1")
        await alice.send(type="close", conversation_id=first, reason="resolved")
        await alice.expect("closed", conversation_id=first)

        await fake.receive("it has not come", customer_id="c5", customer_name="Wang")
        second = await take(alice)
        assert second != first
        await alice.send(type="history", conversation_id=second)
        history = await alice.expect("history", conversation_id=second)
        (past,) = history["conversations"]
        assert past["id"] == first and past["channel"] == "fake"
        assert past["queue"] == "general"
        assert past["agent"] == "alice" and past["agent_name"] == "Alice"
        assert past["close_reason"] == "resolved"
        assert past["messages"] == 2 and past["last_text"] == "On its way"
        assert past["closed_ms"] >= past["opened_ms"] > 0

        # Another customer's conversation has none; someone else's is not to be looked at.
        await fake.receive("first time here", customer_id="c6")
        third = await take(alice)
        await alice.send(type="history", conversation_id=third)
        assert (await alice.expect("history", conversation_id=third))["conversations"] == []
        async with agent_client(gw, "bob") as bob:
            await bob.send(type="history", conversation_id=second)
            error = await bob.expect("error")
            assert error["code"] == "not_yours" and error["conversation_id"] == second


async def test_a_message_right_after_a_close_opens_a_new_conversation(config, redis_url):
    """Close, and the customer writes at once, over and over: each message opens a new
    conversation (the fake channel, like web chat, never reopens), even when it comes in
    the millisecond of the close."""
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = fake_of(gw)
        seen: set[str] = set()
        result = await fake.receive("hello", customer_id="c7")
        for n in range(30):
            conv = await take(alice)
            assert conv == result.conversation_id and conv not in seen, f"round {n}"
            seen.add(conv)
            await gw.services.actions.close(None, conv)
            result = await fake.receive(f"one more thing ({n})", customer_id="c7")
