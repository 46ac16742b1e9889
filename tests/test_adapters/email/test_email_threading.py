"""Threads, replies, bounces and loops through the adapter's inbound and outbound paths, with
the kit's in-memory host on the suite's real Redis and a real SMTP server."""

from __future__ import annotations

import corpus
import msgspec
import pytest

from adapters.contract import CustomerRef, DeliveryError, Outbound
from adapters.email.adapter import EmailAdapter
from adapters.email.config import EmailConfig
from adapters.testing import MemoryHost


@pytest.fixture
async def email(redis, tenant, smtp_sink):
    config = msgspec.convert(
        {
            "mailboxes": [
                {
                    "name": "support",
                    "address": "support@shop.example",
                    "display_name": "Shop",
                    "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "tls": False},
                }
            ],
            "attachment_store_limit_bytes": 50_000,
            "retry_base_s": 0.01,
        },
        EmailConfig,
    )
    host = MemoryHost(tenant=tenant, redis=redis)
    adapter = EmailAdapter(config, host)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.aclose()


def conversation_of(host: MemoryHost, thread: str) -> str:
    """The id of Ann's conversation for this thread."""
    return host.conversation("email", "support", "ann@example.com", thread).id


def mailbox(adapter):
    return adapter.config.mailboxes[0]


def outbound(conversation: str, message_id: str, text: str = "On its way.", **fields) -> Outbound:
    return Outbound(
        channel="email",
        account="support",
        conversation_id=conversation,
        customer=CustomerRef(id="ann@example.com"),
        message_id=message_id,
        text=text,
        agent_name=fields.pop("agent_name", "Alice"),
        **fields,
    )


async def test_a_thread_is_one_conversation_and_replies_thread_correctly(email, smtp_sink):
    host = email.host
    first = corpus.plain(message_id="<c1@mail.example.com>", subject="Damaged item")
    await email.process(mailbox(email), first)
    [inbound] = host.ingested
    assert inbound.thread == "<c1@mail.example.com>" and inbound.kind == "email"
    assert inbound.external_id == "<c1@mail.example.com>"
    assert inbound.customer.id == "ann@example.com" and inbound.customer.name == "Ann Lee"
    assert inbound.metadata["subject"] == "Damaged item"
    assert inbound.reopen_within_s == 7 * 86400
    conversation = conversation_of(host, "<c1@mail.example.com>")

    await email.send(outbound(conversation, "m1"))
    [sent] = smtp_sink.received
    reply = sent.message
    assert reply["In-Reply-To"] == "<c1@mail.example.com>"
    assert reply["References"] == "<c1@mail.example.com>"
    assert reply["Subject"].startswith("Re: Damaged item [#")
    assert reply["From"] == "Alice via Shop <support@shop.example>"
    ours = reply["Message-ID"]

    # Gmail's answer: In-Reply-To our reply.
    answer = corpus.gmail_reply(
        ours, ["<c1@mail.example.com>", ours], "Re: " + reply["Subject"], "Thanks!"
    )
    await email.process(mailbox(email), answer)
    assert host.ingested[-1].thread == "<c1@mail.example.com>"
    assert host.ingested[-1].text.startswith("Thanks!")

    # A client that dropped In-Reply-To and References: the subject token finds the thread.
    bare = corpus.plain(subject=reply["Subject"], body="One more thing.")
    await email.process(mailbox(email), bare)
    assert host.ingested[-1].thread == "<c1@mail.example.com>"

    # The next reply answers the latest mail and carries the whole chain.
    await email.send(outbound(conversation, "m2"))
    second = smtp_sink.received[-1].message
    refs = second["References"].split()
    assert refs[0] == "<c1@mail.example.com>" and ours in refs
    assert second["In-Reply-To"] == host.ingested[-1].external_id
    assert second["Subject"] == reply["Subject"]


async def test_a_new_subject_is_a_new_thread(email):
    await email.process(mailbox(email), corpus.plain(message_id="<a@x.example>", subject="One"))
    await email.process(mailbox(email), corpus.plain(message_id="<b@x.example>", subject="Two"))
    assert [i.thread for i in email.host.ingested] == ["<a@x.example>", "<b@x.example>"]


async def test_a_reply_to_a_mail_we_never_saw_threads_on_its_first_reference(email):
    raw = corpus.gmail_reply(
        "<p2@old.example>", ["<p1@old.example>", "<p2@old.example>"], "Re: x", "Hi"
    )
    await email.process(mailbox(email), raw)
    assert email.host.ingested[-1].thread == "<p1@old.example>"


async def test_the_same_mail_twice_is_one_message(email):
    raw = corpus.plain(message_id="<dup@x.example>")
    await email.process(mailbox(email), raw)
    await email.process(mailbox(email), raw)
    assert len(email.host.ingested) == 1


async def test_a_reply_is_sent_once_per_outbound_message(email, smtp_sink):
    await email.process(mailbox(email), corpus.plain(message_id="<once@x.example>"))
    conversation = conversation_of(email.host, "<once@x.example>")
    await email.send(outbound(conversation, "m1"))
    await email.send(outbound(conversation, "m1"))
    assert smtp_sink.count() == 1


async def test_a_failed_send_is_an_error_and_can_be_retried(email, smtp_sink):
    await email.process(mailbox(email), corpus.plain(message_id="<f@x.example>"))
    conversation = conversation_of(email.host, "<f@x.example>")
    smtp_sink.fail_next("554 5.7.1 rejected as spam")
    with pytest.raises(DeliveryError) as error:
        await email.send(outbound(conversation, "m1"))
    assert error.value.code == "smtp_554"
    await email.send(outbound(conversation, "m1"))
    assert smtp_sink.count() == 1


async def test_header_injection_in_an_agent_reply_is_refused(email, smtp_sink):
    await email.process(mailbox(email), corpus.plain(message_id="<h@x.example>"))
    conversation = conversation_of(email.host, "<h@x.example>")
    with pytest.raises(DeliveryError) as error:
        await email.send(
            outbound(conversation, "m1", metadata={"subject": "Hi\r\nBcc: all@example.com"})
        )
    assert error.value.code == "bad_header"
    with pytest.raises(DeliveryError):
        await email.send(outbound(conversation, "m2", agent_name="Eve\nBcc: x@example.com"))
    assert smtp_sink.count() == 0
    # A subject of the agent's own, without line breaks, is used (with the thread's token).
    await email.send(outbound(conversation, "m3", metadata={"subject": "Your refund"}))
    assert smtp_sink.received[0].message["Subject"].startswith("Your refund [#")


async def test_a_bounce_tells_the_agent_and_marks_the_reply(email, smtp_sink, redis):
    await email.process(mailbox(email), corpus.plain(message_id="<b1@x.example>"))
    conversation = conversation_of(email.host, "<b1@x.example>")
    await email.send(outbound(conversation, "m1"))
    ours = smtp_sink.received[0].message["Message-ID"]
    await email.process(mailbox(email), corpus.dsn_bounce(ours, "ann@example.com"))
    assert len(email.host.ingested) == 1  # the bounce is not a message
    [(notice_conversation, code, detail)] = email.host.told
    assert (notice_conversation, code) == (conversation, "email_bounced")
    assert "ann@example.com" in detail and "5.1.1" in detail
    assert await redis.hget(email.keys.sent("m1"), "state") == b"bounced"


async def test_plain_bounces_auto_replies_and_our_own_mail_are_not_messages(email, smtp_sink):
    box = mailbox(email)
    await email.process(box, corpus.plain(message_id="<q1@x.example>"))
    conversation = conversation_of(email.host, "<q1@x.example>")
    await email.send(outbound(conversation, "m1"))
    sent = smtp_sink.received[0]
    ours = sent.message["Message-ID"]

    await email.process(box, corpus.qmail_bounce(ours, "ann@example.com"))
    await email.process(box, corpus.auto_submitted(ours))
    await email.process(box, corpus.exchange_oof(ours))
    await email.process(box, corpus.precedence_bulk())
    # Our own reply, delivered back to the mailbox (a Bcc, a forwarding rule).
    await email.process(box, sent.data)
    assert len(email.host.ingested) == 1
    codes = [code for _, code, _ in email.host.told]
    assert codes == ["email_bounced", "email_auto_reply", "email_auto_reply"]


@pytest.mark.parametrize("precedence", ["junk", "bulk", "list"])
async def test_precedence_mail_never_becomes_a_message(email, precedence):
    box = mailbox(email)
    header = f"Precedence: {precedence}"
    raw = corpus.plain(message_id=f"<p-{precedence}@x.example>", headers=header)
    await email.process(box, raw)
    assert email.host.ingested == []
    assert email.host.told == []
    assert email.inbox.counts == {"list" if precedence == "list" else "bulk": 1}
    # The same sender's mail without the header is a customer message.
    await email.process(box, corpus.plain(message_id="<p-person@x.example>"))
    assert [i.external_id for i in email.host.ingested] == ["<p-person@x.example>"]


async def test_attachments_are_stored_up_to_the_limit(email):
    await email.process(mailbox(email), corpus.with_attachments(big=80_000))
    inbound = email.host.ingested[-1]
    names = [(a.name, a.url is not None) for a in inbound.attachments]
    assert names == [("发票.pdf", True), ("damage.png", True), ("logs.zip", False)]
    assert "logs.zip" in inbound.text and "limit" in inbound.text
    pdf = inbound.attachments[0]
    token = pdf.url.rsplit("/", 1)[-1]
    item = await email._store.get(token)
    assert item is not None and item.data == corpus.PDF and item.name == "发票.pdf"


async def test_folded_quotes_keep_the_full_text(email):
    raw = corpus.gmail_reply("<x1@x.example>", ["<x1@x.example>"], "Re: x", "New part only.")
    await email.process(mailbox(email), raw)
    inbound = email.host.ingested[-1]
    assert inbound.text == "New part only."
    full = inbound.attachments[0]
    assert full.name == "full-message.txt"
    item = await email._store.get(full.url.rsplit("/", 1)[-1])
    assert b"We will check." in item.data


async def test_broken_mail_is_kept_with_a_note(email):
    await email.process(mailbox(email), corpus.bad_base64_and_charset())
    inbound = email.host.ingested[-1]
    assert "unknown charset" in inbound.text and "退款" in inbound.text
    assert "unknown charset" in inbound.metadata["notes"]


async def test_no_auto_replies_to_those_who_ask_for_none(email, smtp_sink):
    raw = corpus.plain(message_id="<n@x.example>", headers="X-Auto-Response-Suppress: All")
    await email.process(mailbox(email), raw)
    conversation = conversation_of(email.host, "<n@x.example>")
    await email.send(outbound(conversation, "m1", agent_name=None))  # the gateway's own
    assert smtp_sink.count() == 0
    await email.send(outbound(conversation, "m2"))  # an agent's
    assert smtp_sink.count() == 1


async def test_a_reply_without_smtp_settings_is_refused(redis, tenant):
    config = msgspec.convert(
        {"mailboxes": [{"name": "in-only", "address": "in@shop.example"}]}, EmailConfig
    )
    adapter = EmailAdapter(config, MemoryHost(tenant=tenant, redis=redis))
    await adapter.start()
    with pytest.raises(DeliveryError) as error:
        await adapter.send(
            Outbound(
                channel="email",
                account="in-only",
                conversation_id="c1",
                customer=CustomerRef(id="a@b.cd"),
                message_id="m1",
                text="x",
                agent_name="A",
            )
        )
    assert error.value.code == "no_smtp"
