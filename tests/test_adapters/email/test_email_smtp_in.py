"""The SMTP listener: mail forwarded by a mail server, stored before "250"; recipients,
networks and size checked."""

from __future__ import annotations

import aiosmtplib
import corpus
import msgspec
import pytest
from helpers import free_port

from adapters.email.adapter import EmailAdapter
from adapters.email.config import EmailConfig
from adapters.testing import MemoryHost


async def listening(redis, tenant, **smtp_in) -> EmailAdapter:
    config = msgspec.convert(
        {
            "mailboxes": [
                {
                    "name": "support",
                    "address": "support@shop.example",
                    "aliases": ["help@shop.example"],
                },
                {"name": "sales", "address": "sales@shop.example"},
            ],
            "smtp_in": {"port": free_port(), "allowed_domains": ["shop.example"]} | smtp_in,
        },
        EmailConfig,
    )
    adapter = EmailAdapter(config, MemoryHost(tenant=tenant, redis=redis))
    await adapter.start()
    assert await adapter.ready()
    return adapter


async def send(adapter: EmailAdapter, raw: bytes, to: list[str], sender: str = "ann@example.com"):
    assert adapter.listener is not None
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=adapter.listener.port, timeout=10)
    async with client:
        # sendmail, unlike send(), takes the null sender <> of bounces.
        return await client.sendmail(sender, to, raw)


@pytest.fixture
async def adapter(redis, tenant):
    adapter = await listening(redis, tenant)
    try:
        yield adapter
    finally:
        await adapter.aclose()


async def test_mail_is_stored_then_accepted(adapter):
    refused, reply = await send(
        adapter, corpus.plain(message_id="<s1@x.example>"), ["support@shop.example"]
    )
    assert refused == {} and "stored" in reply
    [inbound] = adapter.host.ingested
    assert (inbound.account, inbound.external_id) == ("support", "<s1@x.example>")


async def test_recipients_choose_the_mailbox(adapter):
    await send(adapter, corpus.plain(message_id="<a1@x.example>"), ["HELP@shop.example"])
    await send(adapter, corpus.plain(message_id="<a2@x.example>"), ["sales@shop.example"])
    # An address of an allowed domain that no mailbox names goes to the default (the first).
    await send(adapter, corpus.plain(message_id="<a3@x.example>"), ["orders@shop.example"])
    assert [i.account for i in adapter.host.ingested] == ["support", "sales", "support"]


async def test_other_domains_are_refused(adapter):
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as error:
        await send(adapter, corpus.plain(), ["someone@elsewhere.example"])
    assert error.value.recipients[0].code == 550
    assert adapter.host.ingested == []


async def test_a_mail_over_the_size_limit_is_refused(redis, tenant):
    adapter = await listening(redis, tenant, max_bytes=4096)
    try:
        # The client learns the limit from EHLO SIZE and is refused at MAIL FROM; a client
        # that ignores it is refused after DATA. Either way: 552, nothing stored.
        with pytest.raises(aiosmtplib.SMTPResponseException) as error:
            await send(adapter, corpus.with_attachments(big=20_000), ["support@shop.example"])
        assert error.value.code == 552
        assert adapter.host.ingested == []
    finally:
        await adapter.aclose()


async def test_a_store_failure_asks_the_server_to_retry(adapter):
    adapter.host.fail("ingest", ConnectionError("Redis went away"), times=1)
    with pytest.raises(aiosmtplib.SMTPDataError) as error:
        await send(adapter, corpus.plain(message_id="<r@x.example>"), ["support@shop.example"])
    assert error.value.code == 451
    await send(adapter, corpus.plain(message_id="<r@x.example>"), ["support@shop.example"])
    assert len(adapter.host.ingested) == 1


async def test_a_bounce_from_the_null_sender_is_not_a_message(adapter):
    bounce = corpus.qmail_bounce("<unknown@shop.example>", "gone@example.net")
    await send(
        adapter, bounce.replace(b"Return-Path: <>\r\n", b""), ["support@shop.example"], sender=""
    )
    assert adapter.host.ingested == []


async def test_clients_outside_the_allowed_networks_are_refused(redis, tenant):
    adapter = await listening(redis, tenant, allowed_networks=["10.0.0.0/8"])
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as error:
            await send(adapter, corpus.plain(), ["support@shop.example"])
        assert error.value.code == 550
    finally:
        await adapter.aclose()
