"""The fake adapter inside a real gateway: how integrators test a channel, and the paths of
a reply the channel refuses."""

from __future__ import annotations

import pytest
from harness import agent, agent_client, make_config, running

from adapters.fake import FakeAdapter


@pytest.fixture
def config(tenant: str):
    return make_config(
        tenant,
        agents=[agent("alice", capacity=0) | {"capacity": {"fake": 2}}],
        queues=[{"name": "general"}],
        fake={"account": "shop"},
        webchat=None,
    )


def fake_of(gw) -> FakeAdapter:
    adapter = gw.services.adapters["fake"]
    assert isinstance(adapter, FakeAdapter)
    return adapter


async def accept_first_offer(alice) -> str:
    offer = await alice.expect("offer")
    await alice.send(type="accept", offer_id=offer["offer_id"])
    await alice.expect("assigned")
    return offer["conversation"]["id"]


async def test_reply_reaches_the_channel_and_events_are_told(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = fake_of(gw)
        result = await fake.receive("where is my parcel?", customer_id="c1", external_id="e1")
        assert not result.duplicate
        again = await fake.receive("where is my parcel?", customer_id="c1", external_id="e1")
        assert again.duplicate and again.message.id == result.message.id

        conversation_id = await accept_first_offer(alice)
        assert conversation_id == result.conversation_id
        joined = await fake.next_event(timeout=5)
        assert joined.kind == "agent_joined" and joined.agent_name == "Agent"

        await alice.send(
            type="reply", conversation_id=conversation_id, text="on its way", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        sent = await fake.next_sent(timeout=5)
        assert (sent.text, sent.account, sent.customer.id) == ("on its way", "shop", "c1")

        # The same client_msg_id again is acknowledged, not sent twice.
        await alice.send(
            type="reply", conversation_id=conversation_id, text="on its way", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        assert len(fake.sent) == 1


async def test_a_refused_reply_is_an_error_frame_and_can_be_retried(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = fake_of(gw)
        await fake.receive("hello", customer_id="c1")
        conversation_id = await accept_first_offer(alice)
        fake.fail_next_send(code="45015", detail="reply window closed")
        await alice.send(
            type="reply", conversation_id=conversation_id, text="sorry", client_msg_id="r1"
        )
        error = await alice.expect("error", client_msg_id="r1")
        assert error["code"] == "channel_error" and "45015" in error["detail"]
        conversation = await gw.services.router.conversation(conversation_id)
        assert [m.text for m in conversation.messages] == ["hello"]

        await alice.send(
            type="reply", conversation_id=conversation_id, text="sorry", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1")
        assert (await fake.next_sent(timeout=5)).text == "sorry"


async def test_threads_are_conversations_and_a_recent_one_reopens(config, redis_url):
    from adapters.contract import CustomerRef, Inbound

    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        host = gw.services.host

        def mail(text: str, thread: str, external_id: str) -> Inbound:
            return Inbound(
                channel="fake",
                account="shop",
                external_id=external_id,
                customer=CustomerRef(id="ann@example.com"),
                text=text,
                thread=thread,
                reopen_within_s=3600,
            )

        invoice = await host.ingest(mail("invoice?", "<a@x>", "1"))
        parcel = await host.ingest(mail("parcel?", "<b@x>", "2"))
        assert invoice.conversation_id != parcel.conversation_id
        again = await host.ingest(mail("invoice, again", "<a@x>", "3"))
        assert again.conversation_id == invoice.conversation_id

        conversation_id = await accept_first_offer(alice)
        await host.tell_agent(conversation_id, "bounced", "the reply bounced")
        notice = await alice.expect("notice", conversation_id=conversation_id)
        assert (notice["code"], notice["detail"]) == ("bounced", "the reply bounced")

        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)
        thread = "<a@x>" if conversation_id == invoice.conversation_id else "<b@x>"
        reopened = await host.ingest(mail("one more thing", thread, "4"))
        assert reopened.conversation_id == conversation_id
        offer = await alice.expect("offer", timeout=5)
        while offer["conversation"]["id"] != conversation_id:
            offer = await alice.expect("offer", timeout=5)
        texts = [m["text"] for m in offer["conversation"]["messages"]]
        assert texts[-1] == "one more thing" and len(texts) >= 2
