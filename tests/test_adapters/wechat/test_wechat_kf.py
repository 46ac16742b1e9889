"""WeCom customer service (微信客服): the callback's encrypted URL check, kf_msg_or_event
notices, pulling with sync_msg from a cursor kept in Redis, and replies via kf/send_msg."""

from __future__ import annotations

import aiohttp
from fake_wechat_api import kf_notice, kf_verify_query, with_query
from harness import agent_client, running
from helpers import wait_until
from wechat_helpers import (
    CORP_ID,
    KF_AES_KEY,
    KF_TOKEN,
    OPEN_KFID,
    post_raw,
    wechat_config,
)

ACCOUNT = f"kf:shop:{OPEN_KFID}"


def text_item(msgid: str, customer: str, text: str) -> dict:
    return {
        "msgid": msgid,
        "external_userid": customer,
        "msgtype": "text",
        "text": {"content": text},
    }


async def notify(gw, fake) -> tuple[int, str]:
    query, body = kf_notice(KF_TOKEN, KF_AES_KEY, CORP_ID, OPEN_KFID, fake.new_sync_token())
    return await post_raw(gw, "/wechat/kf/shop", query, body)


async def texts(gw, customer: str) -> list[str]:
    router = gw.services.router
    conversation_id = await router.open_conversation_id("wechat", ACCOUNT, customer)
    if conversation_id is None:
        return []
    conversation = await router.conversation(conversation_id)
    return [m.text for m in conversation.messages] if conversation else []


async def test_the_url_check_decrypts_echostr(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        query = kf_verify_query(KF_TOKEN, KF_AES_KEY, CORP_ID, "5927782489442352469")
        async with http.get(with_query(gw.base + "/wechat/kf/shop", query)) as response:
            assert (response.status, await response.text()) == (200, "5927782489442352469")
        query["msg_signature"] = "0" * 40
        async with http.get(with_query(gw.base + "/wechat/kf/shop", query)) as response:
            assert response.status == 403
        async with http.get(with_query(gw.base + "/wechat/kf/other", query)) as response:
            assert response.status == 404


async def test_a_notice_pulls_every_page_and_keeps_the_cursor(config, redis_url, fake, redis):
    fake.kf_page_size = 2
    for i in range(5):
        fake.add_kf_message(OPEN_KFID, text_item(f"msg{i}", "wm-cust-1", f"第{i}条"))
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        for _ in range(3):  # WeCom's retries of one notice
            assert await notify(gw, fake) == (200, "success")
        offer = await alice.expect("offer")
        assert offer["conversation"]["account"] == ACCOUNT
        await wait_until(lambda: texts(gw, "wm-cust-1"), message="messages pulled")
        await wait_until(
            lambda: _len_is(texts(gw, "wm-cust-1"), 5), message="every page pulled once"
        )
        assert await texts(gw, "wm-cust-1") == [f"第{i}条" for i in range(5)]
        puller_cursor = gw.services.host.key("wechat", "kf", "cursor", "shop", OPEN_KFID)
        assert await redis.get(puller_cursor) == b"c5"
        pending = gw.services.host.key("wechat", "kf", "pending")
        await wait_until(lambda: _empty(redis.hlen(pending)), message="pending cleared")
        # The next notice reads from the cursor: only what is new.
        fake.add_kf_message(OPEN_KFID, text_item("msg5", "wm-cust-1", "还有"))
        calls = fake.calls["kf_sync_msg"]
        assert await notify(gw, fake) == (200, "success")
        await wait_until(lambda: _len_is(texts(gw, "wm-cust-1"), 6), message="the new one")
        assert fake.calls["kf_sync_msg"] - calls <= 2


async def _len_is(coro, n: int) -> bool:
    return len(await coro) == n


async def _empty(coro) -> bool:
    return (await coro) == 0


async def test_kinds_events_and_servicer_messages(config, redis_url, fake):
    items = [
        {
            "msgid": "e1",
            "origin": 4,
            "msgtype": "event",
            "event": {
                "event_type": "enter_session",
                "external_userid": "wm-kinds",
                "scene": "123",
                "scene_param": "abc",
                "open_kfid": OPEN_KFID,
            },
        },
        {
            "msgid": "k1",
            "external_userid": "wm-kinds",
            "msgtype": "image",
            "image": {"media_id": "MI"},
        },
        {
            "msgid": "k2",
            "external_userid": "wm-kinds",
            "msgtype": "location",
            "location": {
                "latitude": 23.1,
                "longitude": 113.3,
                "name": "广州塔",
                "address": "阅江西路",
            },
        },
        {
            "msgid": "k3",
            "external_userid": "wm-kinds",
            "origin": 5,
            "servicer_userid": "zhangsan",
            "msgtype": "text",
            "text": {"content": "from a WeCom servicer"},
        },
        {
            "msgid": "k4",
            "external_userid": "wm-kinds",
            "msgtype": "channels_shop_order",
            "channels_shop_order": {"order_id": "42"},
        },
    ]
    for item in items:
        fake.add_kf_message(OPEN_KFID, item)
    async with running(config, redis_url) as gw:
        assert await notify(gw, fake) == (200, "success")
        await wait_until(lambda: _len_is(texts(gw, "wm-kinds"), 4), message="four kept")
        router = gw.services.router
        conversation_id = await router.open_conversation_id("wechat", ACCOUNT, "wm-kinds")
        conversation = await router.conversation(conversation_id)
        kinds = [m.kind for m in conversation.messages]
        assert kinds == ["event.enter_session", "image", "location", "unknown:channels_shop_order"]
        assert "order_id: 42" in conversation.messages[3].text
        assert conversation.messages[1].attachments[0].url.startswith("/wechat/kf/shop/media/MI")
        assert "广州塔" in conversation.messages[2].text


async def test_the_agents_reply_goes_out_through_kf_send_msg(config, redis_url, fake):
    fake.add_kf_message(OPEN_KFID, text_item("r0", "wm-reply", "在吗"))
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        assert await notify(gw, fake) == (200, "success")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        conversation_id = offer["conversation"]["id"]
        await alice.send(
            type="reply", conversation_id=conversation_id, text="在的", client_msg_id="k1"
        )
        await alice.expect("reply_ack", client_msg_id="k1")
        (sent,) = fake.kf_sent
        assert (sent["touser"], sent["open_kfid"], sent["msgtype"]) == (
            "wm-reply",
            OPEN_KFID,
            "text",
        )
        assert sent["text"] == {"content": "在的"} and len(sent["msgid"]) <= 32
        assert fake.calls["gettoken"] == 1
        # Images and files are uploaded to WeCom and sent as such.
        fake.files["map.png"] = (b"\x89PNG\r\n\x1a\n" + b"0" * 32, "image/png")
        fake.files["terms.pdf"] = (b"%PDF-1.4 terms", "application/pdf")
        attachments = [
            {"name": "map.png", "content_type": "image/png", "url": f"{fake.base}/files/map.png"},
            {
                "name": "terms.pdf",
                "content_type": "application/pdf",
                "url": f"{fake.base}/files/terms.pdf",
            },
        ]
        await alice.send(
            type="reply",
            conversation_id=conversation_id,
            text="",
            client_msg_id="k-att",
            attachments=attachments,
        )
        await alice.expect("reply_ack", client_msg_id="k-att")
        assert [m["msgtype"] for m in fake.kf_sent[1:]] == ["image", "file"]
        assert fake.media[fake.kf_sent[2]["file"]["media_id"]][0] == b"%PDF-1.4 terms"
        # A session a WeCom servicer took cannot be answered through the API.
        fake.kf_taken.add("wm-reply")
        await alice.send(
            type="reply", conversation_id=conversation_id, text="?", client_msg_id="k2"
        )
        error = await alice.expect("error", client_msg_id="k2")
        assert error["detail"].startswith("95018: send msg session status invalid")


async def test_notices_for_other_accounts_and_bad_notices(tenant, fake, redis_url):
    table_kf = {
        "name": "shop",
        "corp_id": CORP_ID,
        "secret": "corp-kf-secret",
        "token": KF_TOKEN,
        "aes_key": KF_AES_KEY,
        "api_base": fake.work_base,
        "open_kfids": ["wkSomeOtherAccount"],
    }
    config = wechat_config(tenant, fake, kf=[table_kf])
    fake.add_kf_message(OPEN_KFID, text_item("x0", "wm-x", "hi"))
    async with running(config, redis_url) as gw:
        assert await notify(gw, fake) == (200, "success")  # acknowledged, not ours
        query, body = kf_notice(KF_TOKEN, KF_AES_KEY, CORP_ID, OPEN_KFID, "t")
        query["msg_signature"] = "f" * 40
        assert (await post_raw(gw, "/wechat/kf/shop", query, body))[0] == 403
        status, reason = await post_raw(gw, "/wechat/kf/shop", query, b"<xml><a>")
        assert status == 400 and "malformed" in reason
        assert fake.calls["kf_sync_msg"] == 0
