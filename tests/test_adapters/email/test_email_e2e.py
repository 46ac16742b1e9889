"""End to end: a real gateway, the suite's Redis, Dovecot as the support mailbox and an
SMTP server catching replies. A customer's mail reaches an agent; the agent's reply leaves
threaded; the customer's answer joins the same conversation across a gateway restart,
nothing lost and nothing repeated; a bounce and an auto-reply never become messages."""

from __future__ import annotations

import asyncio

import corpus
import pytest
from harness import accept_offer, agent, agent_client, make_config, running
from helpers import wait_until

from adapters.email.adapter import EmailAdapter


def email_agent(agent_id: str) -> dict:
    return agent(agent_id, capacity=0) | {"name": agent_id.title(), "capacity": {"email": 5}}


@pytest.fixture
def config(tenant, dovecot_server, imap_user, smtp_sink):
    return gateway_config(tenant, dovecot_server, imap_user, smtp_sink, ["alice"])


def gateway_config(tenant, dovecot_server, imap_user, smtp_sink, agents: list[str]):
    user, password = imap_user
    return make_config(
        tenant,
        agents=[email_agent(a) for a in agents],
        queues=[{"name": "general"}],
        email={
            "mailboxes": [
                {
                    "name": "support",
                    "address": "support@shop.example",
                    "display_name": "Shop",
                    "imap": {
                        "host": dovecot_server.host,
                        "port": dovecot_server.port,
                        "tls": False,
                        "user": user,
                        "password": password,
                        "timeout_s": 5,
                    },
                    "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "tls": False},
                    "sent_folder": "Sent",
                }
            ],
            "reconnect_max_s": 0.2,
            "retry_base_s": 0.01,
        },
        webchat=None,
    )


def email_of(gw) -> EmailAdapter:
    adapter = gw.services.adapters["email"]
    assert isinstance(adapter, EmailAdapter)
    return adapter


async def connected(gw) -> None:
    adapter = email_of(gw)
    await wait_until(adapter.ready, timeout=15, message="the mailbox is read")


async def closed_by(gw, alice, dovecot_server, user: str, message_id: str) -> str:
    """The conversation of a mail (message_id) that alice takes and closes; its id."""
    await connected(gw)
    await asyncio.to_thread(dovecot_server.append, user, corpus.plain(message_id=message_id))
    offer = await alice.expect("offer", timeout=15)
    conversation_id = offer["conversation"]["id"]
    await alice.send(type="accept", offer_id=offer["offer_id"])
    await alice.expect("assigned")
    await alice.send(type="close", conversation_id=conversation_id)
    await alice.expect("closed", conversation_id=conversation_id)
    return conversation_id


async def test_mail_to_agent_reply_answer_across_a_restart(
    config, redis_url, dovecot_server, imap_user, smtp_sink
):
    user, _ = imap_user
    first = corpus.gb2312_foxmail()
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await connected(gw)
        await asyncio.to_thread(dovecot_server.append, user, first)
        offer = await alice.expect("offer", timeout=15)
        conversation = offer["conversation"]
        assert conversation["channel"] == "email"
        assert conversation["customer"] == {"id": "lisi@163.com", "name": "李四"}
        assert "退款什么时候到账" in conversation["messages"][-1]["text"]
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")

        await alice.send(
            type="reply",
            conversation_id=conversation["id"],
            text="您好，退款已处理，3 个工作日内到账。",
            client_msg_id="r1",
        )
        await alice.expect("reply_ack", client_msg_id="r1", timeout=15)
        await wait_until(lambda: smtp_sink.count() == 1, timeout=10)
        reply = smtp_sink.received[0].message
        assert smtp_sink.received[0].rcpt_tos == ["lisi@163.com"]
        assert reply["In-Reply-To"] == "<202401021000001234567@163.com>"
        assert reply["References"] == "<202401021000001234567@163.com>"
        assert reply["Subject"].startswith("Re: 关于订单１２３４的退款问题（朱镕基） [#")
        assert reply["From"] == "Alice via Shop <support@shop.example>"
        assert reply.get_body(("plain",)).get_content().startswith("您好，退款已处理")
        ours = reply["Message-ID"]
        # The copy in Sent (appended in the background).
        await wait_until(
            lambda: len(dovecot_server.messages(user, "Sent")) == 1, timeout=10, interval=0.1
        )
        await wait_until(lambda: all("\\Seen" in f for f in dovecot_server.flags(user).values()))

    # The gateway is down: the customer answers, and someone else writes a new mail.
    answer = corpus.gmail_reply(
        ours,
        ["<202401021000001234567@163.com>", ours],
        "Re: " + reply["Subject"],
        "收到，谢谢！",
    ).replace(b"ann@example.com", b"lisi@163.com")
    dovecot_server.append(user, answer)
    dovecot_server.append(user, corpus.plain(message_id="<new@x.example>", subject="New"))

    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await connected(gw)
        message = await alice.expect("message", conversation_id=conversation["id"], timeout=15)
        assert message["message"]["text"] == "收到，谢谢！"
        other = await alice.expect("offer", timeout=15)
        assert other["conversation"]["id"] != conversation["id"]
        assert other["conversation"]["customer"]["id"] == "ann@example.com"
        stored = await gw.services.router.conversation(conversation["id"])
        texts = [m.text for m in stored.messages]
        assert texts[1:] == ["您好，退款已处理，3 个工作日内到账。", "收到，谢谢！"]
        assert len(texts) == 3  # nothing repeated by the restart
        assert email_of(gw).inbox.counts.get("duplicate", 0) == 0

        # The reply bounces: the agent is told, no message is added.
        await asyncio.to_thread(
            dovecot_server.append, user, corpus.dsn_bounce(ours, "lisi@163.com")
        )
        notice = await alice.expect("notice", conversation_id=conversation["id"], timeout=15)
        assert notice["code"] == "email_bounced" and "lisi@163.com" in notice["detail"]

        # An out-of-office answer to our reply: the agent hears of it; no message.
        await asyncio.to_thread(dovecot_server.append, user, corpus.auto_submitted(ours))
        notice = await alice.expect("notice", conversation_id=conversation["id"], timeout=15)
        assert notice["code"] == "email_auto_reply"
        stored = await gw.services.router.conversation(conversation["id"])
        assert len(stored.messages) == 3


async def test_a_reply_the_server_refuses_is_an_error_for_the_agent(
    config, redis_url, dovecot_server, imap_user, smtp_sink
):
    user, _ = imap_user
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await connected(gw)
        await asyncio.to_thread(dovecot_server.append, user, corpus.plain())
        offer = await alice.expect("offer", timeout=15)
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        smtp_sink.fail_next("550 5.7.1 relaying denied")
        conversation_id = offer["conversation"]["id"]
        await alice.send(
            type="reply", conversation_id=conversation_id, text="hi", client_msg_id="r1"
        )
        error = await alice.expect("error", client_msg_id="r1", timeout=15)
        assert error["code"] == "channel_error" and "smtp_550" in error["detail"]
        # The retry goes out, once.
        await alice.send(
            type="reply", conversation_id=conversation_id, text="hi", client_msg_id="r1"
        )
        await alice.expect("reply_ack", client_msg_id="r1", timeout=15)
        assert smtp_sink.count() == 1


async def test_attachments_reach_the_agent_with_links(config, redis_url, dovecot_server, imap_user):
    import aiohttp

    user, _ = imap_user
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await connected(gw)
        await asyncio.to_thread(dovecot_server.append, user, corpus.with_attachments())
        offer = await alice.expect("offer", timeout=15)
        [message] = offer["conversation"]["messages"]
        pdf, png = message["attachments"]
        assert (pdf["name"], pdf["content_type"], pdf["size"]) == (
            "发票.pdf",
            "application/pdf",
            len(corpus.PDF),
        )
        async with aiohttp.ClientSession() as http:
            async with http.get(gw.base + pdf["url"]) as response:
                assert response.status == 200
                assert await response.read() == corpus.PDF
                assert response.headers["Content-Disposition"].startswith("attachment;")
            async with http.get(gw.base + png["url"]) as response:
                assert response.content_type == "image/png"
            async with http.get(gw.base + "/email/content/" + "x" * 24) as response:
                assert response.status == 404


async def test_an_answer_to_a_closed_conversation_reopens_it(
    config, redis_url, dovecot_server, imap_user, smtp_sink
):
    user, _ = imap_user
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await closed_by(gw, alice, dovecot_server, user, "<closed@x.example>")

        answer = corpus.gmail_reply(
            "<closed@x.example>",
            ["<closed@x.example>"],
            "Re: Where is my parcel?",
            "Still not here.",
        )
        await asyncio.to_thread(dovecot_server.append, user, answer)
        again = await alice.expect("offer", timeout=15)
        assert again["conversation"]["id"] == conversation_id
        assert again["conversation"]["messages"][-1]["text"] == "Still not here."


async def test_a_reopened_conversation_goes_back_to_its_last_agent(
    tenant, redis_url, dovecot_server, imap_user, smtp_sink
):
    """Issue 5, threading: the customer's answer to a recently closed conversation reopens it,
    and the returning-customer rule offers it to the agent who handled it (bob) although
    least-loaded routing would pick the other agent (alice)."""
    user, _ = imap_user
    config = gateway_config(tenant, dovecot_server, imap_user, smtp_sink, ["alice", "bob"])
    async with running(config, redis_url) as gw:
        await connected(gw)
        async with agent_client(gw, "bob") as bob:
            # Only bob is there: he takes Ann's mail, and another customer's that stays open.
            await asyncio.to_thread(
                dovecot_server.append, user, corpus.plain(message_id="<ann-1@x.example>")
            )
            ann = await accept_offer(bob)
            other = corpus.plain(
                sender="Carl Wu <carl@example.net>",
                subject="Invoice",
                message_id="<carl@x.example>",
            )
            await asyncio.to_thread(dovecot_server.append, user, other)
            carl = await accept_offer(bob)
            assert carl != ann
            await bob.send(type="close", conversation_id=ann)
            await bob.expect("closed", conversation_id=ann)

            async with agent_client(gw, "alice") as alice:
                # Alice: nothing open, and assigned work longer ago (never) than bob, who
                # holds Carl's conversation: least-loaded routing would choose her.
                presence = gw.services.presence
                assert await presence.statuses() == {"alice": "available", "bob": "available"}
                assert (await presence.loads("bob")).get("email") == 1
                assert (await presence.loads("alice")).get("email", 0) == 0
                answer = corpus.gmail_reply(
                    "<ann-1@x.example>",
                    ["<ann-1@x.example>"],
                    "Re: Where is my parcel?",
                    "Still not here.",
                )
                await asyncio.to_thread(dovecot_server.append, user, answer)
                offer = await bob.expect("offer", timeout=15)
                assert offer["conversation"]["id"] == ann
                texts = [m["text"] for m in offer["conversation"]["messages"]]
                question = config.core.csat.message  # sent at the close (docs/reports.md)
                assert texts == [
                    "Hello, my order 1234 has not arrived.",
                    question,
                    "Still not here.",
                ]
                await bob.send(type="accept", offer_id=offer["offer_id"])
                assigned = await bob.expect("assigned")
                assert assigned["conversation"]["id"] == ann
                # Everything alice was sent so far is read (the pong comes after it): no offer.
                await alice.send(type="ping")
                await alice.expect("pong")
                assert not [f for f in alice.frames if f["type"] == "offer"]
