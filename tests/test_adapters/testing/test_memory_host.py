"""The kit's in-memory AdapterHost: it must take messages the way the gateway's host does,
or adapters tested on it would pass here and fail in production."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.contract import AdapterHost, CustomerRef, Inbound
from adapters.testing import Lookup, MemoryHost, NodeMessage
from gateway.flows.host import GatewayHost


def mail(text: str, external_id: str, *, customer: str = "ann", **fields: object) -> Inbound:
    return Inbound(
        channel="fake",
        account="shop",
        external_id=external_id,
        customer=CustomerRef(id=customer, name="Ann"),
        text=text,
        **fields,  # type: ignore[arg-type]
    )


def test_it_has_every_member_of_the_protocol() -> None:
    members = {name for name in vars(AdapterHost) if not name.startswith("_")}
    host = MemoryHost()
    assert members and sorted(n for n in members if not hasattr(host, n)) == []


def test_keys_are_laid_out_like_the_gateways() -> None:
    ours = MemoryHost(tenant="acme").key("sms", "cursor", "a")
    assert ours == GatewayHost("acme", "n1").key("sms", "cursor", "a")


async def test_dedupe_on_channel_account_and_external_id() -> None:
    host = MemoryHost()
    first = await host.ingest(mail("hello", "e1"))
    again = await host.ingest(mail("hello again", "e1"))
    assert again.duplicate and not first.duplicate
    assert (again.conversation_id, again.message) == (first.conversation_id, first.message)
    other_customer = await host.ingest(mail("hello", "e1", customer="bo"))
    assert other_customer.duplicate  # same channel, account and id: the same message
    assert [i.text for i in host.ingested] == ["hello"]
    assert (first.queue_position, first.message.direction) == (1, "in")


async def test_one_conversation_per_customer_and_thread() -> None:
    host = MemoryHost()
    a = await host.ingest(mail("invoice?", "1", thread="<a@x>"))
    b = await host.ingest(mail("parcel?", "2", thread="<b@x>"))
    a_again = await host.ingest(mail("invoice, again", "3", thread="<a@x>"))
    assert a.conversation_id == a_again.conversation_id != b.conversation_id
    found = host.conversation("fake", "shop", "ann", "<a@x>")
    assert [m.text for m in found.messages] == ["invoice?", "invoice, again"]
    with pytest.raises(KeyError, match="no conversation"):
        host.conversation("fake", "shop", "ann")


async def test_open_conversation_assign_and_close() -> None:
    host = MemoryHost()
    assert await host.open_conversation("fake", "shop", "ann") is None
    result = await host.ingest(mail("hi", "1"))
    host.assign(result.conversation_id, "Alice")
    opened = await host.open_conversation("fake", "shop", "ann")
    assert opened is not None and (opened.id, opened.agent_name) == (
        result.conversation_id,
        "Alice",
    )
    assert [m.id for m in opened.messages] == [result.message.id]
    assert (await host.ingest(mail("more", "2"))).queue_position is None  # held by Alice
    await host.close_conversation(result.conversation_id, "unsubscribed")
    assert await host.open_conversation("fake", "shop", "ann") is None
    assert host.closed == [(result.conversation_id, "unsubscribed")]
    assert host.lookups[0] == Lookup("fake", "shop", "ann", None) and len(host.lookups) == 3
    # Closed, and no reopen window: the next message opens a new conversation.
    assert (await host.ingest(mail("new", "3"))).conversation_id != result.conversation_id


async def test_a_recently_closed_conversation_reopens_within_the_window() -> None:
    host = MemoryHost()
    first = await host.ingest(mail("hi", "1", reopen_within_s=3600))
    await host.close_conversation(first.conversation_id, "resolved")
    again = await host.ingest(mail("one more thing", "2", reopen_within_s=3600))
    assert again.conversation_id == first.conversation_id
    assert host.conversations[first.conversation_id].state == "queued"
    await host.close_conversation(first.conversation_id, "resolved")
    closed = host.conversations[first.conversation_id]
    assert closed.closed_at is not None
    closed.closed_at -= timedelta(hours=2)
    late = await host.ingest(mail("months later", "3", reopen_within_s=3600))
    assert late.conversation_id != first.conversation_id


async def test_reclassify_and_tell_agent_are_recorded() -> None:
    host = MemoryHost()
    result = await host.ingest(mail("★★★★★", "1"))
    edited = mail("★☆☆☆☆", "1:v2")
    assert (await host.reclassify(result.conversation_id, edited)).state == "queued"
    host.assign(result.conversation_id, "Alice")
    assert (await host.reclassify(result.conversation_id, edited)).state == "assigned"
    assert not (await host.reclassify("nonesuch", edited)).moved
    await host.tell_agent(result.conversation_id, "review_edited", "now one star")
    assert [c for c, _ in host.reclassified] == [result.conversation_id] * 2 + ["nonesuch"]
    assert host.told == [(result.conversation_id, "review_edited", "now one star")]


async def test_reply_is_the_outbound_of_the_conversation() -> None:
    host = MemoryHost()
    result = await host.ingest(mail("hi", "1"))
    out = host.reply(result.conversation_id, "hello", agent_name="Alice")
    assert (out.channel, out.account, out.customer.id) == ("fake", "shop", "ann")
    assert (out.conversation_id, out.text, out.agent_name) == (
        result.conversation_id,
        "hello",
        "Alice",
    )
    messages = host.conversations[result.conversation_id].messages
    assert [(m.direction, m.id) for m in messages] == [
        ("in", result.message.id),
        ("out", out.message_id),
    ]


async def test_fail_for_a_number_of_calls_or_until_healed() -> None:
    host = MemoryHost()
    host.fail("ingest", ConnectionError("Redis went away"), times=2)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await host.ingest(mail("hi", "1"))
    await host.ingest(mail("hi", "1"))
    host.fail("open_conversation", TimeoutError())
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await host.open_conversation("fake", "shop", "ann")
    host.heal("open_conversation")
    assert await host.open_conversation("fake", "shop", "ann") is not None
    with pytest.raises(ValueError, match="cannot fail"):
        host.fail("key", RuntimeError())


async def test_peers_share_conversations_and_reach_each_others_handlers() -> None:
    a = MemoryHost(tenant="acme", node_id="a")
    b = a.peer("b")
    got: list[bytes] = []

    async def handler(payload: bytes) -> None:
        got.append(payload)

    b.on_node_message("deliver", handler)
    first = await a.ingest(mail("hi", "1"))
    assert (await b.ingest(mail("hi", "1"))).duplicate
    assert b.conversation("fake", "shop", "ann").id == first.conversation_id
    assert (b.tenant, b.node_id, len(a.ingested), b.ingested) == ("acme", "b", 1, [])
    await a.send_to_node("b", "deliver", b"x")
    await a.send_to_node("gone", "deliver", b"y")  # no such process: dropped
    assert got == [b"x"]
    assert a.node_messages == [
        NodeMessage("b", "deliver", b"x"),
        NodeMessage("gone", "deliver", b"y"),
    ]
    with pytest.raises(ValueError, match="already"):
        a.peer("b")
