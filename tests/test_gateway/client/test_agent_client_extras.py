"""The client library's canned replies, close reasons, notes and history: the frames it
sends and decodes against the scripted gateway, `expand_canned`, and the whole round trip
against a real gateway."""

from __future__ import annotations

import pytest
from fake_gateway import TOKEN, FakeGateway
from harness import agent, make_config, running

from adapters.fake import FakeAdapter
from gateway.client import (
    AddNote,
    AgentClient,
    Assigned,
    CannedReply,
    Close,
    Closed,
    Error,
    History,
    HistoryRequest,
    Note,
    NoteAdded,
    NoteAuthor,
    Offer,
    PastConversation,
    Welcome,
    expand_canned,
)

CANNED = [
    CannedReply(id="hi", title="Greeting", text="Hi {customer_name}, {agent_name} here."),
    CannedReply(id="bill", title="Billing", text="Invoice sent.", queues=["billing"]),
]


class CannedGateway(FakeGateway):
    def welcome(self) -> Welcome:
        welcome = super().welcome()
        welcome.canned_replies = list(CANNED)
        welcome.close_reasons = ["resolved", "spam"]
        return welcome


@pytest.fixture
def canned_gateway(gateway: FakeGateway) -> FakeGateway:
    gateway.__class__ = CannedGateway
    return gateway


def test_expand_canned_fills_in_the_two_placeholders_only() -> None:
    text = "Hi {customer_name}, {agent_name} here. {order} {{x}} {}"
    assert expand_canned(text, customer_name="Li Wei", agent_name="Alice") == (
        "Hi Li Wei, Alice here. {order} {{x}} {}"
    )
    assert expand_canned(text) == "Hi ,  here. {order} {{x}} {}"


async def test_canned_replies_and_close_reasons_come_from_the_welcome(
    canned_gateway: FakeGateway,
) -> None:
    client = AgentClient(canned_gateway.url, TOKEN)
    assert client.canned_replies == [] and client.close_reasons == []
    async with client:
        assert client.canned_replies == CANNED
        assert client.close_reasons == ["resolved", "spam"]
        assert [c.id for c in client.canned_for("general")] == ["hi"]
        assert [c.id for c in client.canned_for("billing")] == ["hi", "bill"]


async def test_note_history_and_close_send_their_frames(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN) as client:
        await client.note("c-1", "VIP")
        assert await gateway.expect(AddNote) == AddNote(conversation_id="c-1", text="VIP")
        await client.history("c-1")
        assert await gateway.expect(HistoryRequest) == HistoryRequest(conversation_id="c-1")
        await client.close("c-1", reason="resolved")
        assert await gateway.expect(Close) == Close(conversation_id="c-1", reason="resolved")
        await client.close("c-2")
        assert await gateway.expect(Close) == Close(conversation_id="c-2")

        note = Note(id="n-1", author=NoteAuthor(id="bob", name="Bob"), text="hi", at_ms=5)
        await gateway.send(NoteAdded(conversation_id="c-1", note=note))
        assert (await client.wait_for(NoteAdded)).note == note
        past = PastConversation(
            id="c-0", channel="webchat", queue="general", opened_ms=1, closed_ms=2,
            agent=None, close_reason=None, messages=3, last_text=None,
        )  # fmt: skip
        await gateway.send(History(conversation_id="c-1", conversations=[past]))
        history = await client.wait_for(History)
        assert history.conversations == [past] and history.conversations[0].agent_name is None


async def test_against_a_real_gateway(tenant: str, redis_url: str) -> None:
    config = make_config(
        tenant,
        agents=[agent("alice") | {"name": "Alice", "capacity": {"fake": 2}}],
        fake={},
        canned_replies=[{"id": "hi", "text": "Hello {customer_name}, {agent_name} here."}],
        conversations={"close_reasons": ["resolved"]},
    )
    async with running(config, redis_url) as gw:
        fake = gw.services.adapters["fake"]
        assert isinstance(fake, FakeAdapter)
        async with AgentClient(gw.ws_url("/agent/ws"), "tok-alice", reconnect=False) as client:
            (canned,) = client.canned_replies
            await fake.receive("hi", customer_id="c1", customer_name="Li Wei")
            offer = await client.wait_for(Offer)
            await client.accept(offer.offer_id)
            conv = (await client.wait_for(Assigned)).conversation
            text = expand_canned(canned.text, conv.customer.name, client.welcome.agent.shown_as)
            assert text == "Hello Li Wei, Alice here."
            await client.note(conv.id, "wants a call back")
            added = await client.wait_for(NoteAdded)
            assert (added.note.text, added.note.author.name) == ("wants a call back", "Alice")
            await client.close(conv.id, reason="not a reason")
            error = await client.wait_for(Error)
            assert (error.code, error.field) == ("bad_close_reason", "reason")
            await client.close(conv.id, reason="resolved")
            await client.wait_for(Closed)

            await fake.receive("me again", customer_id="c1", customer_name="Li Wei")
            offer = await client.wait_for(Offer)
            await client.history(offer.conversation.id)
            history = await client.wait_for(History)
            assert [(p.id, p.close_reason) for p in history.conversations] == [
                (conv.id, "resolved")
            ]
