"""What makes a WeChat callback authentic, in a real gateway on real sockets: a signed
timestamp within the tolerance, each (timestamp, nonce) pair taken once across processes, a
safe-mode account taking encrypted callbacks only, and every odd input (non-ASCII
signatures, unknown or multi-byte encodings, odd XML shapes) a clean 4xx whose body holds
no exception text."""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

import aiohttp
import pytest
from fake_wechat_api import kf_notice, kf_verify_query, oa_callback, oa_verify_query, oa_xml
from harness import running
from wechat_helpers import (
    AES_KEY,
    APP_ID,
    CORP_ID,
    KF_AES_KEY,
    KF_TOKEN,
    OPEN_KFID,
    TOKEN,
    post_raw,
    wechat_config,
)

from adapters.model import Message

THIRTY_DAYS_S = 30 * 86400
EXCEPTION_WORDS = ("Error", "Exception", "Traceback", "errno")


@pytest.fixture
def clean_log(caplog):
    caplog.set_level(logging.INFO)
    yield
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]


async def stored(gw, account: str, openid: str) -> list[Message]:
    router = gw.services.router
    conversation_id = await router.open_conversation_id("wechat", account, openid)
    conversation = await router.conversation(conversation_id) if conversation_id else None
    return conversation.messages if conversation else []


def clean(text: str) -> bool:
    return not any(word in text for word in EXCEPTION_WORDS)


async def test_a_callback_signed_long_ago_is_refused_and_stores_nothing(
    config, redis_url, clean_log
):
    async with running(config, redis_url) as gw:
        old = int(time.time()) - THIRTY_DAYS_S
        xml = oa_xml("o-victim", "text", Content="refund me", MsgId=4242)
        for account, key in (("plain", None), ("main", AES_KEY)):
            query, body = oa_callback(TOKEN, xml, aes_key=key, app_id=APP_ID, timestamp=old)
            status, reason = await post_raw(gw, f"/wechat/{account}", query, body)
            assert status == 403 and "stale timestamp" in reason, reason
            assert await stored(gw, account, "o-victim") == []
        # From the future too; within the tolerance is fine (clocks drift a little).
        soon = int(time.time()) + 3600
        query, body = oa_callback(TOKEN, xml, timestamp=soon)
        assert (await post_raw(gw, "/wechat/plain", query, body))[0] == 403
        query, body = oa_callback(TOKEN, xml, timestamp=int(time.time()) - 120)
        assert await post_raw(gw, "/wechat/plain", query, body) == (200, "success")
        # The URL check and WeCom's callbacks keep to the same tolerance.
        async with aiohttp.ClientSession() as http:
            query = oa_verify_query(TOKEN, "echo", timestamp=old)
            async with http.get(gw.base + "/wechat/main", params=query) as reply:
                assert reply.status == 403
        query, body = kf_notice(KF_TOKEN, KF_AES_KEY, CORP_ID, OPEN_KFID, "tok", timestamp=old)
        assert (await post_raw(gw, "/wechat/kf/shop", query, body))[0] == 403


async def test_the_tolerance_is_configurable(tenant, fake, redis_url):
    config = wechat_config(tenant, fake, timestamp_tolerance_s=5.0)
    async with running(config, redis_url) as gw:
        xml = oa_xml("o-tight", "text", Content="x", MsgId=1)
        query, body = oa_callback(TOKEN, xml, timestamp=int(time.time()) - 60)
        status, reason = await post_raw(gw, "/wechat/plain", query, body)
        assert status == 403 and "tolerance 5 s" in reason


async def test_a_replayed_pair_is_refused_on_every_process(
    tenant, fake, redis_url, redis, clean_log
):
    config = wechat_config(tenant, fake)
    async with running(config, redis_url) as one, running(config, redis_url) as two:
        now = int(time.time())
        first = oa_xml("o-real", "text", Content="where is my parcel", MsgId=501)
        query, body = oa_callback(TOKEN, first, timestamp=now, nonce="1234567890")
        assert await post_raw(one, "/wechat/plain", query, body) == (200, "success")
        # The same signed query, with a body naming someone else, on the other process.
        forged = oa_xml("o-forged", "text", Content="send it to me", MsgId=502)
        status, reason = await post_raw(two, "/wechat/plain", query, forged.encode())
        assert status == 409 and "replayed" in reason
        assert await stored(two, "plain", "o-forged") == []
        # The pair is remembered under the tenant's hash tag, for the window and no longer.
        key = f"zt:{{{tenant}}}:ad:wechat:seen:plain:{now}.1234567890"
        assert 0 < await redis.ttl(key) <= 600
        # Safe mode: replaying the whole request (body and msg_signature) is refused too.
        query, body = oa_callback(TOKEN, first, aes_key=AES_KEY, app_id=APP_ID)
        assert await post_raw(one, "/wechat/main", query, body) == (200, "success")
        assert (await post_raw(two, "/wechat/main", query, body))[0] == 409
        # The same pair on another account is that account's first use.
        query, body = oa_callback(TOKEN, first, timestamp=now, nonce="1234567890")
        assert await post_raw(two, "/wechat/mixed", query, body) == (200, "success")
        # WeCom notices alike.
        notice = kf_notice(KF_TOKEN, KF_AES_KEY, CORP_ID, OPEN_KFID, fake.new_sync_token())
        assert await post_raw(one, "/wechat/kf/shop", *notice) == (200, "success")
        status, reason = await post_raw(two, "/wechat/kf/shop", *notice)
        assert status == 409 and "replayed" in reason


async def test_a_message_that_could_not_be_stored_can_be_retried_with_its_pair(config, redis_url):
    async with running(config, redis_url) as gw:
        switchboard = gw.services.switchboard
        real_ingest = switchboard.ingest

        async def failing(inbound):
            raise ConnectionError("redis went away")

        switchboard.ingest = failing
        xml = oa_xml("o-again", "text", Content="hello?", MsgId=777)
        query, body = oa_callback(TOKEN, xml)
        assert (await post_raw(gw, "/wechat/plain", query, body))[0] == 503
        switchboard.ingest = real_ingest
        # WeChat's retry of that very request is taken: the pair was released.
        assert await post_raw(gw, "/wechat/plain", query, body) == (200, "success")
        assert [m.text for m in await stored(gw, "plain", "o-again")] == ["hello?"]
        # Redis away when the pair is claimed: 503 as well, and nothing taken.
        replay = gw.services.adapters["wechat"].replay
        real_claim = replay.claim

        async def unreachable(*args):
            raise ConnectionError("redis went away")

        replay.claim = unreachable
        later = oa_xml("o-again", "text", Content="anyone?", MsgId=778)
        query, body = oa_callback(TOKEN, later)
        assert (await post_raw(gw, "/wechat/plain", query, body))[0] == 503
        replay.claim = real_claim
        assert await post_raw(gw, "/wechat/plain", query, body) == (200, "success")


async def test_a_safe_mode_account_refuses_plaintext(config, redis_url, clean_log):
    async with running(config, redis_url) as gw:
        xml = oa_xml("o-plain", "text", Content="not encrypted", MsgId=61)
        query, body = oa_callback(TOKEN, xml)  # correctly signed, but no encrypt_type=aes
        status, reason = await post_raw(gw, "/wechat/main", query, body)
        assert status == 403 and "safe mode" in reason
        assert await stored(gw, "main", "o-plain") == []
        # Compatible mode is the opt-in that takes both.
        query, body = oa_callback(TOKEN, xml)
        assert await post_raw(gw, "/wechat/mixed", query, body) == (200, "success")


async def test_msg_signature_is_checked_before_decrypting(config, redis_url, clean_log):
    async with running(config, redis_url) as gw:
        xml = oa_xml("o-sig", "text", Content="x", MsgId=71)
        query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
        query["msg_signature"] = query["msg_signature"].upper()  # hex in either case is fine
        assert await post_raw(gw, "/wechat/main", query, body) == (200, "success")
        for bad in ("0" * 40, "é" * 40, "", "x"):
            query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
            query["msg_signature"] = bad
            status, reason = await post_raw(gw, "/wechat/main", query, body)
            assert status == 403 and "msg_signature" in reason and clean(reason)


SIGNATURE_VALUES = ["éééé", "签名" * 20, "\x00\x01", "%ff", "a" * 5000]


@pytest.mark.parametrize(
    "value", SIGNATURE_VALUES, ids=["accents", "cjk", "control", "percent", "long"]
)
async def test_odd_signature_values_are_403_everywhere(config, redis_url, clean_log, value):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        xml = oa_xml("o-odd", "text", Content="x", MsgId=81)
        oa_get = oa_verify_query(TOKEN, "echo") | {"signature": value}
        kf_get = kf_verify_query(KF_TOKEN, KF_AES_KEY, CORP_ID, "e") | {"msg_signature": value}
        oa_post, oa_body = oa_callback(TOKEN, xml)
        aes_post, aes_body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
        kf_post, kf_body = kf_notice(KF_TOKEN, KF_AES_KEY, CORP_ID, OPEN_KFID, "t")
        checks = [
            ("GET", "/wechat/main", oa_get, b""),
            ("GET", "/wechat/kf/shop", kf_get, b""),
            ("POST", "/wechat/plain", oa_post | {"signature": value}, oa_body),
            ("POST", "/wechat/main", aes_post | {"msg_signature": value}, aes_body),
            ("POST", "/wechat/kf/shop", kf_post | {"msg_signature": value}, kf_body),
            ("POST", "/wechat/plain", oa_post | {"timestamp": value}, oa_body),
            ("POST", "/wechat/plain", oa_post | {"nonce": value}, oa_body),
        ]
        for method, path, query, body in checks:
            url = gw.base + path + "?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
            async with http.request(method, url, data=body) as reply:
                text = await reply.text()
                assert reply.status == 403, (path, reply.status, text)
                assert clean(text), text


def plain_message(content: str) -> str:
    return (
        "<xml><ToUserName>gh</ToUserName><FromUserName>o-enc</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>text</MsgType>"
        f"<Content>{content}</Content><MsgId>91</MsgId></xml>"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'<?xml version="1.0" encoding="bogus-enc"?>' + plain_message("x").encode(),
            "unsupported XML encoding 'bogus-enc'",
        ),
        (
            b'<?xml version="1.0" encoding="UTF-16"?>' + plain_message("x").encode(),
            "unsupported XML encoding 'UTF-16'",
        ),
        (('<?xml version="1.0"?>' + plain_message("x")).encode("utf-16"), "not UTF-16"),
        (plain_message("caf\xe9").encode("latin-1"), "not valid 'utf-8'"),
        (
            b'<?xml version="1.0" encoding="GB2312"?>'
            + plain_message("X").encode().replace(b"X", b"\xff\xff"),
            "not valid 'GB2312'",
        ),
        (
            b"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1"
            b"</CreateTime><MsgType>event</MsgType><Event><x/></Event></xml>",
            "Event must be plain text",
        ),
        (
            b"<xml><FromUserName>o</FromUserName><FromUserName>p</FromUserName>"
            b"<MsgType>text</MsgType></xml>",
            "FromUserName must be plain text once",
        ),
        (
            b"<xml><FromUserName>o</FromUserName><MsgType>event</MsgType></xml>",
            "an event without Event",
        ),
        (
            b'<xml><FromUserName x="1">o</FromUserName><MsgType>text</MsgType></xml>',
            "FromUserName must be plain text",
        ),
    ],
    ids=[
        "bogus-enc",
        "declared-utf16",
        "utf16",
        "latin1",
        "bad-gb2312",
        "event-with-children",
        "repeated",
        "event-without-event",
        "attribute",
    ],
)
async def test_unreadable_xml_is_a_clean_400(config, redis_url, clean_log, body, reason):
    async with running(config, redis_url) as gw:
        query, _ = oa_callback(TOKEN, "<xml/>")
        status, text = await post_raw(gw, "/wechat/plain", query, body)
        assert status == 400 and reason in text, text
        assert clean(text)
        # Inside an encrypted message too (the decrypted text goes through the same reader).
        if body.startswith(b"<xml>") and body.isascii():
            query, envelope = oa_callback(TOKEN, body.decode(), aes_key=AES_KEY, app_id=APP_ID)
            status, text = await post_raw(gw, "/wechat/main", query, envelope)
            assert status == 400 and reason in text, text


async def test_a_gb2312_message_is_read(config, redis_url, clean_log):
    async with running(config, redis_url) as gw:
        body = ('<?xml version="1.0" encoding="GB2312"?>' + plain_message("快递到哪了")).encode(
            "gb2312"
        )
        query, _ = oa_callback(TOKEN, "<xml/>")
        assert await post_raw(gw, "/wechat/plain", query, body) == (200, "success")
        assert [m.text for m in await stored(gw, "plain", "o-enc")] == ["快递到哪了"]
