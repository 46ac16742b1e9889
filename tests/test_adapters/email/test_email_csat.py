"""CSAT on email, end to end with Dovecot and an SMTP sink: the close sends the question in
the customer's thread; their reply "5" (quoted question and all) is the rating: the agent
who held the conversation hears of it, the customer is thanked, and no conversation opens.
A reply that is not a lone digit is a message like any other."""

from __future__ import annotations

import asyncio

import corpus
import pytest
from harness import agent_client, running
from helpers import wait_until
from test_email_e2e import connected, gateway_config


@pytest.fixture
def config(tenant, dovecot_server, imap_user, smtp_sink):
    return gateway_config(tenant, dovecot_server, imap_user, smtp_sink, ["alice"])


async def test_a_reply_with_a_digit_rates_the_closed_conversation(
    config, redis_url, dovecot_server, imap_user, smtp_sink
):
    user, _ = imap_user
    first_id = "<csat-first@example.com>"
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await connected(gw)
        await asyncio.to_thread(dovecot_server.append, user, corpus.plain(message_id=first_id))
        offer = await alice.expect("offer", timeout=15)
        conversation_id = offer["conversation"]["id"]
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(type="close", conversation_id=conversation_id)
        await alice.expect("closed", conversation_id=conversation_id)

        await wait_until(lambda: smtp_sink.count() == 1, timeout=10)
        question = smtp_sink.received[0].message
        assert smtp_sink.received[0].rcpt_tos == ["ann@example.com"]
        assert question["In-Reply-To"] == first_id
        assert "Reply with one digit from" in question.get_body(("plain",)).get_content()

        answer = corpus.gmail_reply(
            question["Message-ID"],
            [first_id, question["Message-ID"]],
            "Re: " + question["Subject"],
            "5",
        )
        await asyncio.to_thread(dovecot_server.append, user, answer)
        rated = await alice.expect("csat", conversation_id=conversation_id, timeout=15)
        assert rated["score"] == 5 and rated["comment"] is None

        await wait_until(lambda: smtp_sink.count() == 2, timeout=10)
        thanks = smtp_sink.received[1].message
        assert thanks.get_body(("plain",)).get_content().startswith("Thank you for your rating")
        router = gw.services.router
        assert await router.open_conversation_id("email", "support", "ann@example.com") is None
        stored = await router.conversation(conversation_id)
        assert stored.state == "closed"
        record = await router.csat_of(conversation_id)
        assert (record.score, record.agent) == (5, "alice")

        # The same customer writes on: a message, in the same thread, that reopens it.
        again = corpus.gmail_reply(
            question["Message-ID"],
            [first_id, question["Message-ID"]],
            "Re: " + question["Subject"],
            "One more thing: 5 boxes, not 4.",
        )
        await asyncio.to_thread(dovecot_server.append, user, again)
        offer = await alice.expect("offer", timeout=15)
        assert offer["conversation"]["id"] == conversation_id
        assert offer["conversation"]["messages"][-1]["text"] == "One more thing: 5 boxes, not 4."
        assert (await router.csat_of(conversation_id)).score == 5
