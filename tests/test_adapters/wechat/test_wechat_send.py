"""Agents' replies out through the customer-service message API, end to end: a WeChat text
reaches the agent, the reply reaches the fake platform as WeChat expects it, images are
uploaded, and the platform's refusals, token errors and network errors are handled."""

from __future__ import annotations

import base64
import time

import pytest
from fake_wechat_api import DROP, DROP_AFTER, oa_xml
from harness import agent_client, running
from wechat_helpers import APP_ID, PLAIN_APP_ID, post_callback, wechat_config

from adapters.contract import CustomerRef, DeliveryError, Outbound
from adapters.wechat import WeChatAdapter

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def adapter_of(gw) -> WeChatAdapter:
    adapter = gw.services.adapters["wechat"]
    assert isinstance(adapter, WeChatAdapter)
    return adapter


async def start_conversation(gw, alice, openid: str = "o-reply", account: str = "plain") -> str:
    xml = oa_xml(openid, "text", Content="where is my parcel?", MsgId=int(time.time() * 1000))
    assert await post_callback(gw, xml, account=account) == (200, "success")
    offer = await alice.expect("offer")
    await alice.send(type="accept", offer_id=offer["offer_id"])
    await alice.expect("assigned")
    return offer["conversation"]["id"]


async def reply(alice, conversation_id: str, text: str, cmid: str, **extra) -> dict:
    """Send a reply frame; the reply_ack or error frame for its client_msg_id."""
    await alice.send(
        type="reply", conversation_id=conversation_id, text=text, client_msg_id=cmid, **extra
    )
    return await alice.expect(("reply_ack", "error"), timeout=10, client_msg_id=cmid)


async def test_a_wechat_text_reaches_the_agent_and_the_reply_reaches_wechat(
    config, redis_url, fake
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-e2e", account="main")
        frame = await reply(alice, conversation_id, "它明天到 — tomorrow", "r1")
        assert frame["type"] == "reply_ack"
        assert fake.sent == [
            {
                "touser": "o-e2e",
                "msgtype": "text",
                "text": {"content": "它明天到 — tomorrow"},
                "_appid": APP_ID,
            }
        ]
        # The same client_msg_id again is acknowledged, not sent again.
        assert (await reply(alice, conversation_id, "它明天到 — tomorrow", "r1"))[
            "type"
        ] == "reply_ack"
        assert len(fake.sent) == 1
        assert fake.calls["stable_token"] == 1


async def test_attached_images_are_uploaded_and_sent_as_image_messages(config, redis_url, fake):
    fake.files["photo.png"] = (PNG, "image/png")
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-img")
        attachments = [
            {
                "name": "photo.png",
                "content_type": "image/png",
                "url": f"{fake.base}/files/photo.png",
            },
            {"name": "inline.png", "content_type": "image/png", "url": data_url},
        ]
        frame = await reply(alice, conversation_id, "here you go", "r-img", attachments=attachments)
        assert frame["type"] == "reply_ack", frame
        assert [m["msgtype"] for m in fake.sent] == ["text", "image", "image"]
        for message in fake.sent[1:]:
            data, _, media_type = fake.media[message["image"]["media_id"]]
            assert (data, media_type) == (PNG, "image")
        assert all(m["_appid"] == PLAIN_APP_ID for m in fake.sent)


async def test_an_attachment_wechat_cannot_carry_is_refused_before_anything_is_sent(
    config, redis_url, fake
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-pdf")
        attachments = [
            {"name": "a.pdf", "content_type": "application/pdf", "url": "http://x/a.pdf"}
        ]
        frame = await reply(alice, conversation_id, "the invoice", "r-pdf", attachments=attachments)
        assert frame["type"] == "error" and "unsupported_attachment" in frame["detail"]
        assert fake.sent == []


async def test_a_reply_after_the_window_gets_an_error_frame_without_calling_wechat(
    config, redis_url, fake, redis
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-late")
        windows = adapter_of(gw).windows
        two_days_ago = int((time.time() - 49 * 3600) * 1000)
        await redis.hset(windows.state_key("plain", "o-late"), "msg_at", two_days_ago)
        frame = await reply(alice, conversation_id, "sorry for the wait", "r-late")
        assert frame["type"] == "error" and frame["code"] == "channel_error"
        assert frame["detail"].startswith("45015: ") and "48-hour" in frame["detail"]
        assert fake.calls["custom_send"] == 0
        # The customer writes again: the window reopens and the same reply goes out.
        xml = oa_xml("o-late", "text", Content="hello?", MsgId=99)
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        assert (await reply(alice, conversation_id, "sorry for the wait", "r-late"))[
            "type"
        ] == "reply_ack"
        assert [m["text"]["content"] for m in fake.sent] == ["sorry for the wait"]


async def test_wechats_own_refusal_reaches_the_agent_with_its_code_and_message(
    config, redis_url, fake
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-refused")
        fake.closed_windows.add("o-refused")
        frame = await reply(alice, conversation_id, "are you there?", "r-x")
        assert frame["type"] == "error" and frame["code"] == "channel_error"
        assert frame["detail"].startswith("45015: response out of time limit")
        fake.closed_windows.clear()
        fake.fail_next("custom_send", {"errcode": 48001, "errmsg": "api unauthorized"})
        frame = await reply(alice, conversation_id, "are you there?", "r-y")
        assert frame["detail"].startswith("48001: api unauthorized")
        assert fake.sent == []


async def test_the_per_window_quota_is_enforced_and_a_new_message_renews_it(
    tenant, fake, redis_url
):
    config = wechat_config(tenant, fake, replies_per_window=2)
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-quota")
        assert (await reply(alice, conversation_id, "one", "q1"))["type"] == "reply_ack"
        assert (await reply(alice, conversation_id, "two", "q2"))["type"] == "reply_ack"
        frame = await reply(alice, conversation_id, "three", "q3")
        assert frame["type"] == "error" and frame["detail"].startswith("45047: ")
        assert len(fake.sent) == 2
        xml = oa_xml("o-quota", "text", Content="and?", MsgId=4242)
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        assert (await reply(alice, conversation_id, "three", "q3"))["type"] == "reply_ack"
        # WeChat's own 45047 maps the same way.
        fake.quota["o-quota"] = 0
        frame = await reply(alice, conversation_id, "four", "q4")
        assert frame["detail"].startswith("45047: out of response count limit")


@pytest.mark.parametrize("how", ["invalidated", "expired"])
async def test_a_token_error_refreshes_the_token_once_and_retries(config, redis_url, fake, how):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-token")
        assert (await reply(alice, conversation_id, "first", "t1"))["type"] == "reply_ack"
        fake.invalidate_tokens() if how == "invalidated" else fake.expire_tokens()
        assert (await reply(alice, conversation_id, "second", "t2"))["type"] == "reply_ack"
        assert [m["text"]["content"] for m in fake.sent] == ["first", "second"]
        assert fake.calls["custom_send"] == 3  # first, refused second, retried second
        # Only once: a token refused twice is an error for the agent, not a loop.
        fake.fail_next(
            "custom_send",
            {"errcode": 40001, "errmsg": "invalid credential"},
            {
                "errcode": 40001,
                "errmsg": "invalid credential",
            },
        )
        frame = await reply(alice, conversation_id, "third", "t3")
        assert frame["type"] == "error" and frame["detail"].startswith("40001: ")


async def test_network_errors_are_retried_with_backoff(config, redis_url, fake):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-net")
        fake.fail_next("custom_send", 503, {"errcode": -1, "errmsg": "system error"})
        assert (await reply(alice, conversation_id, "made it", "n1"))["type"] == "reply_ack"
        assert fake.calls["custom_send"] == 3
        assert [m["text"]["content"] for m in fake.sent] == ["made it"]
        fake.fail_next("custom_send", 503, 503, 503)
        frame = await reply(alice, conversation_id, "lost", "n2")
        assert frame["type"] == "error" and frame["detail"].startswith("http_503")
        assert len(fake.sent) == 1


async def test_a_reply_whose_outcome_is_unknown_is_never_sent_twice(config, redis_url, fake):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-once")
        fake.fail_next("custom_send", DROP_AFTER)  # WeChat delivers it, the answer is lost
        frame = await reply(alice, conversation_id, "only once", "u1")
        assert frame["type"] == "error" and frame["detail"].startswith("outcome_unknown")
        assert len(fake.sent) == 1 and fake.calls["custom_send"] == 1

        # The same outbound message again (the gateway's or the agent's retry): refused.
        adapter = adapter_of(gw)
        outbound = Outbound(
            channel="wechat",
            account="plain",
            conversation_id=conversation_id,
            customer=CustomerRef(id="o-once"),
            message_id="m-fixed",
            text="exactly once",
            metadata={"client_msg_id": "u2"},
        )
        fake.fail_next("custom_send", DROP)
        with pytest.raises(DeliveryError) as refused:
            await adapter.send(outbound)
        assert refused.value.code == "outcome_unknown"
        with pytest.raises(DeliveryError) as again:
            await adapter.send(outbound)
        assert again.value.code == "outcome_unknown"
        assert fake.calls["custom_send"] == 2


async def test_send_is_idempotent_on_the_message_and_client_msg_id(config, redis_url, fake):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        conversation_id = await start_conversation(gw, alice, openid="o-idem")
        adapter = adapter_of(gw)

        def outbound(message_id: str) -> Outbound:
            return Outbound(
                channel="wechat",
                account="plain",
                conversation_id=conversation_id,
                customer=CustomerRef(id="o-idem"),
                message_id=message_id,
                text="hello once",
                metadata={"client_msg_id": "same-cmid"},
            )

        await adapter.send(outbound("m-a"))
        await adapter.send(outbound("m-b"))  # a retry of the same client_msg_id
        assert [m["text"]["content"] for m in fake.sent] == ["hello once"]


async def test_a_reply_to_an_unknown_account_is_refused(config, redis_url, fake):
    async with running(config, redis_url) as gw:
        outbound = Outbound(
            channel="wechat",
            account="gone",
            conversation_id="c1",
            customer=CustomerRef(id="o"),
            message_id="m1",
            text="x",
        )
        with pytest.raises(DeliveryError) as refused:
            await adapter_of(gw).send(outbound)
        assert refused.value.code == "unknown_account"
