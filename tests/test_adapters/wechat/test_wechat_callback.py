"""The Official Account callback at /wechat/{account}, in a real gateway on real sockets:
verification, plaintext, compatible and safe mode, every message kind and event, dedupe of
WeChat's retries, and the answers to bad input."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest
from fake_wechat_api import oa_callback, oa_verify_query, oa_xml, sign, with_query
from harness import agent_client, running
from helpers import replica_of, skip_without_redis_server, wait_until
from wechat_helpers import AES_KEY, APP_ID, TOKEN, post_callback, post_raw, wechat_config

from adapters.model import Message
from gateway.redis.embedded import RedisServer


async def stored(gw, account: str, openid: str) -> list[Message]:
    router = gw.services.router
    conversation_id = await router.open_conversation_id("wechat", account, openid)
    if conversation_id is None:
        return []
    conversation = await router.conversation(conversation_id)
    return conversation.messages if conversation else []


async def test_get_verification_echoes_echostr_after_the_signature_check(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        query = oa_verify_query(TOKEN, "echo-8842")
        async with http.get(with_query(gw.base + "/wechat/main", query)) as response:
            assert (response.status, await response.text()) == (200, "echo-8842")
        query["signature"] = sign("wrong-token", query["timestamp"], query["nonce"])
        async with http.get(with_query(gw.base + "/wechat/main", query)) as response:
            assert response.status == 403
            assert "signature" in await response.text()
        async with http.get(with_query(gw.base + "/wechat/nope", query)) as response:
            assert response.status == 404


@pytest.mark.parametrize(
    ("account", "safe", "compatible"),
    [
        ("plain", False, False),
        ("main", True, False),
        ("mixed", True, True),
        ("mixed", False, False),
    ],
    ids=["plaintext", "safe", "compatible", "plaintext-on-a-compatible-account"],
)
async def test_a_text_reaches_the_agent_and_three_deliveries_make_one_message(
    config, redis_url, account, safe, compatible
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        xml = oa_xml("o-cust-1", "text", Content="我的快递还没到", MsgId=23456789012345)
        for _ in range(3):  # WeChat's retries: the same message, freshly signed each time
            status, body = await post_callback(
                gw, xml, account=account, safe=safe, compatible=compatible
            )
            assert (status, body) == (200, "success")
        offer = await alice.expect("offer")
        conversation = offer["conversation"]
        assert (conversation["channel"], conversation["account"]) == ("wechat", account)
        assert conversation["customer"]["id"] == "o-cust-1"
        assert [m["text"] for m in conversation["messages"]] == ["我的快递还没到"]
        assert [m.text for m in await stored(gw, account, "o-cust-1")] == ["我的快递还没到"]


def _kinds() -> list[tuple[str, dict, str, str]]:
    """(MsgType, fields, expected kind, expected text fragment)."""
    return [
        ("text", {"Content": "hello", "MsgId": 1001}, "text", "hello"),
        (
            "image",
            {"PicUrl": "http://mmbiz.qpic.cn/pic.jpg", "MediaId": "m-img", "MsgId": 1002},
            "image",
            "[image]",
        ),
        (
            "voice",
            {"MediaId": "m-voice", "Format": "amr", "Recognition": "快递在哪", "MsgId": 1003},
            "voice",
            "[voice] 快递在哪",
        ),
        (
            "voice",
            {"MediaId": "m-voice2", "Format": "amr", "MsgId": 1004},
            "voice",
            "[voice message]",
        ),
        ("video", {"MediaId": "m-video", "ThumbMediaId": "t1", "MsgId": 1005}, "video", "[video]"),
        (
            "shortvideo",
            {"MediaId": "m-short", "ThumbMediaId": "t2", "MsgId": 1006},
            "shortvideo",
            "[short video]",
        ),
        (
            "location",
            {
                "Location_X": 23.134521,
                "Location_Y": 113.358803,
                "Scale": 20,
                "Label": "广州塔",
                "MsgId": 1007,
            },
            "location",
            "广州塔 (23.134521, 113.358803)",
        ),
        (
            "link",
            {
                "Title": "Order 4471",
                "Description": "my order",
                "Url": "https://shop.example/o/4471",
                "MsgId": 1008,
            },
            "link",
            "https://shop.example/o/4471",
        ),
        (
            "file",
            {
                "Title": "invoice.pdf",
                "Description": "",
                "FileKey": "k",
                "FileMd5": "d41d8",
                "FileTotalLen": 2048,
                "MsgId": 1009,
            },
            "file",
            "[file] invoice.pdf (2048 bytes)",
        ),
        (
            "event",
            {"Event": "subscribe", "EventKey": "qrscene_spring-sale", "Ticket": "TICKET"},
            "event.subscribe",
            "scene spring-sale",
        ),
        (
            "event",
            {"Event": "subscribe", "EventKey": ""},
            "event.subscribe",
            "[followed the account]",
        ),
        ("event", {"Event": "CLICK", "EventKey": "MENU_HELP"}, "event.click", "MENU_HELP"),
        (
            "event",
            {"Event": "VIEW", "EventKey": "https://shop.example/"},
            "event.view",
            "https://shop.example/",
        ),
        ("event", {"Event": "SCAN", "EventKey": "42", "Ticket": "T"}, "event.scan", "scene 42"),
        ("hologram", {"Depth": "3", "MsgId": 1010}, "unknown:hologram", "Depth: 3"),
        (
            "event",
            {"Event": "weapp_audit_success", "SuccTime": 1},
            "unknown:event.weapp_audit_success",
            "SuccTime: 1",
        ),
    ]


@pytest.mark.parametrize(("msg_type", "fields", "kind", "text"), _kinds())
async def test_every_kind_is_stored_with_a_readable_text(
    config, redis_url, msg_type, fields, kind, text
):
    async with running(config, redis_url) as gw:
        openid = f"o-{kind}"
        status, body = await post_callback(gw, oa_xml(openid, msg_type, **fields), account="plain")
        assert (status, body) == (200, "success")
        messages = await stored(gw, "plain", openid)
        assert [m.kind for m in messages] == [kind]
        assert text in messages[0].text
        if kind == "image":
            assert messages[0].attachments[0].url == "http://mmbiz.qpic.cn/pic.jpg"
        if kind in ("voice", "video", "shortvideo"):
            assert messages[0].attachments[0].url.startswith("/wechat/plain/media/m-")


async def test_events_without_msgid_dedupe_on_sender_time_and_event(config, redis_url):
    async with running(config, redis_url) as gw:
        created = int(time.time())
        click = oa_xml("o-ev", "event", create_time=created, Event="CLICK", EventKey="K")
        for _ in range(3):
            assert (await post_callback(gw, click, account="plain"))[0] == 200
        view = oa_xml("o-ev", "event", create_time=created, Event="VIEW", EventKey="https://x/")
        assert (await post_callback(gw, view, account="plain"))[0] == 200
        assert [m.kind for m in await stored(gw, "plain", "o-ev")] == ["event.click", "event.view"]


async def test_a_media_link_relays_the_file_and_refuses_a_forged_one(config, redis_url, fake):
    fake.media["m-voice-1"] = (b"#!AMR\nfake-voice", "audio/amr", "voice")
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        xml = oa_xml("o-media", "voice", MediaId="m-voice-1", Format="amr", MsgId=777)
        assert (await post_callback(gw, xml, account="plain"))[0] == 200
        (message,) = await stored(gw, "plain", "o-media")
        link = message.attachments[0].url
        async with http.get(gw.base + link) as response:
            assert response.status == 200
            assert await response.read() == b"#!AMR\nfake-voice"
        async with http.get(gw.base + link.replace("s=", "s=x")) as response:
            assert response.status == 403


async def test_unsubscribe_closes_the_open_conversation(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        host = gw.services.host
        if not hasattr(host, "close_conversation"):
            # Until the host offers it (see the report), do what it will do.
            async def close_conversation(conversation_id: str, reason: str) -> None:
                await gw.services.switchboard.close_conversation(conversation_id, None, reason)

            host.close_conversation = close_conversation
        await post_callback(gw, oa_xml("o-leave", "text", Content="hi", MsgId=5), account="plain")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        leave = oa_xml("o-leave", "event", Event="unsubscribe")
        for _ in range(3):
            assert (await post_callback(gw, leave, account="plain")) == (200, "success")
        message = await alice.expect("message", conversation_id=offer["conversation"]["id"])
        assert message["message"]["kind"] == "event.unsubscribe"
        closed = await alice.expect("closed", conversation_id=offer["conversation"]["id"])
        assert closed["reason"] == "customer_unsubscribed"
        assert await gw.services.router.open_conversation_id("wechat", "plain", "o-leave") is None


async def test_unsubscribe_without_a_conversation_starts_none(config, redis_url):
    async with running(config, redis_url) as gw:
        leave = oa_xml("o-gone", "event", Event="unsubscribe")
        assert (await post_callback(gw, leave, account="plain")) == (200, "success")
        assert await stored(gw, "plain", "o-gone") == []


# Bad input.


async def test_bad_signatures_get_403(config, redis_url):
    async with running(config, redis_url) as gw:
        xml = oa_xml("o-bad", "text", Content="x", MsgId=1)
        status, reason = await post_callback(gw, xml, account="plain", token="NotOurToken")
        assert status == 403 and "signature" in reason
        status, _ = await post_raw(gw, "/wechat/plain", {}, xml.encode())
        assert status == 403
        # Safe mode: a good signature but a msg_signature over something else.
        query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
        query["msg_signature"] = "0" * 40
        status, reason = await post_raw(gw, "/wechat/main", query, body)
        assert status == 403 and "msg_signature" in reason
        # Encrypted for another AppID.
        query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id="wxSomeoneElse")
        status, reason = await post_raw(gw, "/wechat/main", query, body)
        assert status == 403 and "AppID" in reason
        assert await stored(gw, "plain", "o-bad") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<xml><ToUserName>x</ToUserName>", "malformed XML"),
        (b"not xml at all", "malformed XML"),
        (b"<xml></xml>", "root element"),
        (b"<xml><MsgType>text</MsgType></xml>", "FromUserName"),
        (
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<xml><FromUserName>o</FromUserName><MsgType>text</MsgType><Content>&xxe;</Content></xml>",
            "DTD",
        ),
        (
            b'<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b"<xml><FromUserName>o</FromUserName><MsgType>text</MsgType><Content>&b;</Content></xml>",
            "DTD",
        ),
        (b"<xml><FromUserName>o</FromUserName><Content>&xxe;</Content></xml>", "malformed XML"),
    ],
    ids=["truncated", "not-xml", "empty", "no-sender", "xxe", "billion-laughs", "undefined-entity"],
)
async def test_malformed_or_dangerous_xml_gets_400_with_a_reason(config, redis_url, body, reason):
    async with running(config, redis_url) as gw:
        query, _ = oa_callback(TOKEN, "<xml/>")
        status, text = await post_raw(gw, "/wechat/plain", query, body)
        assert status == 400
        assert reason in text


async def test_xxe_inside_an_encrypted_message_gets_400(config, redis_url):
    async with running(config, redis_url) as gw:
        xml = (
            '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>g'
            "</ToUserName><FromUserName>o</FromUserName><MsgType>text</MsgType>"
            "<Content>&xxe;</Content></xml>"
        )
        query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
        status, text = await post_raw(gw, "/wechat/main", query, body)
        assert status == 400 and "DTD" in text


async def test_an_encrypted_callback_for_an_account_without_aes_key_gets_400(config, redis_url):
    async with running(config, redis_url) as gw:
        xml = oa_xml("o-x", "text", Content="x", MsgId=9)
        query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
        status, text = await post_raw(gw, "/wechat/plain", query, body)
        assert status == 400 and "aes_key" in text


async def test_a_body_over_the_limit_gets_413_and_an_unknown_account_404(config, redis_url):
    async with running(config, redis_url) as gw:
        big = oa_xml("o-big", "text", Content="x" * 70000, MsgId=2)
        status, text = await post_callback(gw, big, account="plain")
        assert status == 413 and "larger than" in text
        status, _ = await post_callback(
            gw, oa_xml("o", "text", Content="x", MsgId=3), account="nope"
        )
        assert status == 404


async def test_a_message_that_cannot_be_stored_is_not_acknowledged(config, redis_url):
    async with running(config, redis_url) as gw:
        switchboard = gw.services.switchboard
        real_ingest = switchboard.ingest

        async def failing(inbound):
            raise ConnectionError("redis went away")

        switchboard.ingest = failing
        xml = oa_xml("o-retry", "text", Content="still there?", MsgId=31337)
        status, _ = await post_callback(gw, xml, account="plain")
        assert status == 503  # not "success": WeChat retries
        switchboard.ingest = real_ingest
        assert await post_callback(gw, xml, account="plain") == (200, "success")
        assert [m.text for m in await stored(gw, "plain", "o-retry")] == ["still there?"]


async def test_ignored_events_are_acknowledged_but_not_stored(tenant, fake, redis_url):
    from wechat_helpers import wechat_config

    config = wechat_config(tenant, fake, ignore_events=["VIEW", "LOCATION"])
    async with running(config, redis_url) as gw:
        view = oa_xml("o-quiet", "event", Event="VIEW", EventKey="https://x/")
        assert await post_callback(gw, view, account="plain") == (200, "success")
        assert await stored(gw, "plain", "o-quiet") == []


async def test_profile_lookup_never_delays_ingest_and_names_later_messages(
    tenant, fake, redis_url, redis
):
    import asyncio

    from wechat_helpers import wechat_config

    table = wechat_config(tenant, fake).adapters["wechat"]
    for account in table.accounts:
        account.profile_lookup = True
    config = wechat_config(tenant, fake)
    config.adapters["wechat"] = table
    fake.users["o-vip"] = {"unionid": "u-li", "remark": "VIP Li"}
    fake.holds["user_info"] = asyncio.Event()  # WeChat is slow to answer the lookup
    async with running(config, redis_url) as gw:
        seen = []
        switchboard = gw.services.switchboard
        real_ingest = switchboard.ingest

        async def spy(inbound):
            seen.append(inbound)
            return await real_ingest(inbound)

        switchboard.ingest = spy
        started = time.monotonic()
        first = oa_xml("o-vip", "text", Content="hi", MsgId=1)
        assert await post_callback(gw, first, account="plain") == (200, "success")
        # Well inside WeChat's 5 seconds; had it waited for the held lookup, it would have
        # taken the lookup's whole request timeout (5 s) or more.
        assert time.monotonic() - started < 4.0
        assert seen[0].customer.name is None
        await wait_until(lambda: fake.calls["user_info"] == 1, message="lookup started")
        fake.holds["user_info"].set()
        profile_key = gw.services.host.key("wechat", "profile", "plain", "o-vip")
        await wait_until(lambda: redis.exists(profile_key), message="profile cached")
        second = oa_xml("o-vip", "text", Content="again", MsgId=2)
        assert await post_callback(gw, second, account="plain") == (200, "success")
        assert seen[1].customer.name == "VIP Li"
        assert seen[1].metadata["unionid"] == "u-li"
        assert fake.calls["user_info"] == 1


async def test_a_message_no_replica_confirms_is_503_without_a_traceback_and_stored_once(
    tenant, fake, caplog
):
    """[redis] min_replica_acks = 1 and no replica: stored, not confirmed, as during a
    failover. WeChat is told 503 (it retries by itself), no error is logged for it, and
    its retry once a replica is there is answered "success", the message stored once."""
    skip_without_redis_server()
    acks = {"min_replica_acks": 1, "min_replica_timeout_ms": 2000}  # a busy machine
    config = wechat_config(tenant, fake, redis=acks)
    xml = oa_xml("o-cust-9", "text", Content="到了吗", MsgId=23456789012399)
    with RedisServer(persistent=False) as master:
        async with running(config, master.url) as gw:
            with caplog.at_level(logging.WARNING):
                status, body = await post_callback(gw, xml)
            assert status == 503 and "not yet on a replica" in body, body
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert not errors, [r.getMessage() for r in errors]
            async with replica_of(master):
                assert await post_callback(gw, xml) == (200, "success")
                assert [m.text for m in await stored(gw, "main", "o-cust-9")] == ["到了吗"]
