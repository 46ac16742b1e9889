"""CSAT on email, end to end with Dovecot and an SMTP sink: the close sends the question in
the customer's thread; their reply "5" (quoted question and all) is the rating: the agent
who held the conversation hears of it, the customer is thanked, and no conversation opens;
a digit above a phone's signature rates it too.
A reply that is not a lone digit is a message like any other."""

from __future__ import annotations

import asyncio

import corpus
import pytest
from harness import agent_client, running
from helpers import wait_until
from test_email_e2e import closed_by, gateway_config


@pytest.fixture
def config(tenant, dovecot_server, imap_user, smtp_sink):
    return gateway_config(tenant, dovecot_server, imap_user, smtp_sink, ["alice"])


async def closed_and_asked(gw, alice, dovecot_server, user, smtp_sink, first_id: str):
    """A mail alice takes and closes, and the question the close mailed; its id and the
    question."""
    conversation_id = await closed_by(gw, alice, dovecot_server, user, first_id)
    await wait_until(lambda: smtp_sink.count() == 1, timeout=10)
    return conversation_id, smtp_sink.received[0].message


async def answer(dovecot_server, user: str, question, first_id: str, body: str) -> None:
    """The customer's reply to the question, as Gmail writes it (quoting it)."""
    reply = corpus.gmail_reply(
        question["Message-ID"],
        [first_id, question["Message-ID"]],
        "Re: " + question["Subject"],
        body,
    )
    await asyncio.to_thread(dovecot_server.append, user, reply)


# Answers from a phone carry its line ("Sent from my iPhone") or a "-- " signature.
SIGNED = "4\n\nSent from my iPhone\n-- \nAnn Lee\nShop customer since 2019"


@pytest.mark.parametrize(("written", "score"), [("5", 5), (SIGNED, 4)], ids=["5", "signed"])
async def test_a_reply_with_a_digit_rates_the_closed_conversation(
    config, redis_url, dovecot_server, imap_user, smtp_sink, written, score
):
    user, _ = imap_user
    first_id = "<csat-first@example.com>"
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id, question = await closed_and_asked(
            gw, alice, dovecot_server, user, smtp_sink, first_id
        )
        assert smtp_sink.received[0].rcpt_tos == ["ann@example.com"]
        assert question["In-Reply-To"] == first_id
        assert "Reply with one digit from" in question.get_body(("plain",)).get_content()

        await answer(dovecot_server, user, question, first_id, written)
        rated = await alice.expect("csat", conversation_id=conversation_id, timeout=15)
        assert rated["score"] == score and rated["comment"] is None

        await wait_until(lambda: smtp_sink.count() == 2, timeout=10)
        thanks = smtp_sink.received[1].message
        assert thanks.get_body(("plain",)).get_content().startswith("Thank you for your rating")
        router = gw.services.router
        assert await router.open_conversation_id("email", "support", "ann@example.com") is None
        stored = await router.conversation(conversation_id)
        assert stored.state == "closed"
        record = await router.csat_of(conversation_id)
        assert (record.score, record.agent) == (score, "alice")

        # The same customer writes on: a message, in the same thread, that reopens it.
        await answer(dovecot_server, user, question, first_id, "One more thing: 5 boxes, not 4.")
        offer = await alice.expect("offer", timeout=15)
        assert offer["conversation"]["id"] == conversation_id
        assert offer["conversation"]["messages"][-1]["text"] == "One more thing: 5 boxes, not 4."
        assert (await router.csat_of(conversation_id)).score == score
