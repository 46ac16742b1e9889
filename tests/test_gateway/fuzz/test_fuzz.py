"""The fuzz suite: ZHONGTAI_FUZZ_COUNT hostile inputs (200 by default, 2,000 for the full
run) to each entry point of a real running gateway: the agent socket, the web chat socket,
WeChat callbacks (safe, compatible and plaintext accounts), the review webhook and the admin
API. Each asserts 0 crashes (no 5xx, no ``internal`` error frame, no close 1011, every input
answered in time), 0 tracebacks and errors in the gateway's log (conftest.py), and a normal
conversation end to end afterwards on the same gateway."""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

import aiohttp
from fake_wechat_api import oa_callback, sign, with_query
from fuzz_drive import Outcomes, SocketDriver, http_status, normal_conversation
from fuzz_inputs import ADMIN_TOKEN, COUNT, REVIEW_SECRET, SEED, Fuzz
from wechat_helpers import AES_KEY, APP_ID, PLAIN_APP_ID, TOKEN

from adapters.reviews.webhook import sign as sign_review

AGENT_FRAMES = {
    "hello": ["token", "protocol"],
    "set_status": ["status"],
    "accept": ["offer_id"],
    "decline": ["offer_id", "reason"],
    "reply": ["conversation_id", "text", "client_msg_id", "attachments", "subject"],
    "transfer": ["conversation_id", "to_agent", "to_queue", "note"],
    "close": ["conversation_id", "reason"],
    "note": ["conversation_id", "text"],
    "history": ["conversation_id"],
    "ping": [],
}
AGENT_VALUES = {
    "token": ["tok-alice", "tok-carol", ""],
    "protocol": [1, 2, 0],
    "status": ["available", "away", "offline", "lunch"],
    "to_agent": ["carol", "alice", "nobody"],
    "to_queue": ["general", "nowhere"],
    "attachments": [[], [{"id": "x"}], [{"url": "http://x"}]],
    "text": ["hi", ""],
    "client_msg_id": ["r1", "r2"],
    "offer_id": ["o-nope"],
    "conversation_id": ["c-nope"],
}
WEBCHAT_FRAMES = {
    "hello": ["visitor_token"],
    "message": ["text", "client_msg_id", "prechat", "attachments"],
    "typing": [],
}
WEBCHAT_VALUES = {
    "text": ["hello", "你好", "", " " * 10, "x" * 5000],
    "client_msg_id": ["m1", "m2", ""],
    "attachments": [[], [{"id": "nope"}], [{}]],
    "prechat": [{}, {"name": "Lin"}, {"x": 1}],
}


def _report(outcomes: Outcomes, what: str) -> str:
    return (
        f"{what}: {len(outcomes.problems)} problems in {COUNT} inputs (seed {SEED}): "
        + "; ".join(outcomes.problems[:5])
        + f"; outcomes {dict(outcomes.counts)}"
    )


async def test_agent_socket(gateway):
    fuzz, outcomes = Fuzz(SEED), Outcomes()
    driver = SocketDriver(
        gateway.ws_url("/agent/ws"),
        hello={"type": "hello", "token": "tok-alice", "protocol": 1},
        # Answered with an error naming this (unknown) conversation.
        probe=lambda n: {"type": "history", "conversation_id": f"probe-{n}"},
        is_reply=lambda frame, n: frame.get("conversation_id") == f"probe-{n}",
        outcomes=outcomes,
    )
    for i in range(COUNT):
        await driver.feed(fuzz.json_text(fuzz.frame(AGENT_FRAMES, AGENT_VALUES)), i)
    await driver.close()

    assert not outcomes.problems, _report(outcomes, "agent socket")
    await normal_conversation(gateway)


async def test_webchat_socket(gateway):
    fuzz, outcomes = Fuzz(SEED + 1), Outcomes()
    driver = SocketDriver(
        gateway.ws_url("/webchat/ws"),
        hello={"type": "hello"},
        # Echoed with its client_msg_id.
        probe=lambda n: {"type": "message", "text": "probe", "client_msg_id": f"probe-{n}"},
        is_reply=lambda frame, n: frame.get("client_msg_id") == f"probe-{n}",
        outcomes=outcomes,
    )
    for i in range(COUNT):
        await driver.feed(fuzz.json_text(fuzz.frame(WEBCHAT_FRAMES, WEBCHAT_VALUES)), i)
    await driver.close()

    assert not outcomes.problems, _report(outcomes, "web chat socket")
    await normal_conversation(gateway)


def _xml(fuzz: Fuzz) -> str:
    """A WeChat message: well formed with odd values, or of an odd shape."""

    def field() -> str:
        value = fuzz.string()
        return (
            f"<![CDATA[{value}]]>"
            if fuzz.chance(0.5)
            else value.replace("<", "&lt;").replace("&", "&amp;")
        )

    kind = fuzz.rng.randrange(6)
    if kind <= 2:
        msg_type = fuzz.rng.choice(["text", "image", "voice", "event", "location", fuzz.string()])
        parts = {
            "ToUserName": "gh_main",
            "FromUserName": field() if fuzz.chance(0.3) else f"o{secrets.token_hex(6)}",
            "CreateTime": fuzz.rng.choice(
                [str(int(time.time())), "-1", "x", "99999999999999999999"]
            ),
            "MsgType": msg_type,
            "Content": field(),
            "MsgId": fuzz.rng.choice([str(fuzz.rng.randrange(10**12)), "", "abc"]),
            "Event": fuzz.rng.choice(["subscribe", "CLICK", "<x/>", ""]),
            "PicUrl": field(),
            "MediaId": field(),
        }
        chosen = {k: v for k, v in parts.items() if not fuzz.chance(0.2)}
        return "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in chosen.items()) + "</xml>"
    if kind == 3:
        encoding = fuzz.rng.choice(["bogus-enc", "GB2312", "utf-16", "UTF-8", "latin-1"])
        declaration = f'<?xml version="1.0" encoding="{encoding}"?>'
        return f"{declaration}<xml><Content>{fuzz.string()}</Content></xml>"
    if kind == 4:
        return fuzz.rng.choice(
            [
                "",
                "<xml>",
                "<xml><a><b></a></xml>",
                "<!DOCTYPE x [<!ENTITY e 'x'>]><xml>&e;</xml>",
                "<xml><Event><x/></Event></xml>",
                "<" * 500,
            ]
        )
    return fuzz.string()


async def test_wechat_callbacks(gateway):
    fuzz, outcomes = Fuzz(SEED + 2), Outcomes()
    async with aiohttp.ClientSession() as http:
        for _ in range(COUNT):
            account = fuzz.rng.choice(["main", "mixed", "plain", "plain", "nosuch"])
            xml = _xml(fuzz)
            kind = fuzz.rng.randrange(4)
            if kind <= 1:  # signed as WeChat signs, so the body is read
                safe = account in ("main", "mixed") and (kind == 0 or fuzz.chance(0.3))
                query, body = oa_callback(
                    TOKEN,
                    xml,
                    aes_key=AES_KEY if safe else None,
                    app_id=PLAIN_APP_ID if account == "plain" else APP_ID,
                    compatible=account == "mixed" and fuzz.chance(0.5),
                )
                if fuzz.chance(0.2):  # a good signature on a broken envelope
                    body = fuzz.rng.choice(
                        [
                            body[: len(body) // 2],
                            body + b"<",
                            fuzz.rng.randbytes(64),
                            xml.encode("utf-8", "replace"),
                        ]
                    )
            elif kind == 2:  # signed, but stale or replayed
                stamp = str(int(time.time()) - fuzz.rng.choice([0, 3600, 86400 * 30]))
                nonce = fuzz.rng.choice(["n1", "n1", secrets.token_hex(4)])
                query = {"signature": sign(TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce}
                body = xml.encode("utf-8", "replace")
            else:  # anything
                names = [
                    "signature",
                    "timestamp",
                    "nonce",
                    "msg_signature",
                    "encrypt_type",
                    "echostr",
                    "openid",
                ]
                query = {n: fuzz.string() for n in names if fuzz.chance(0.6)}
                body = fuzz.rng.choice(
                    [xml.encode("utf-8", "replace"), fuzz.rng.randbytes(100), b""]
                )
            method = "GET" if fuzz.chance(0.15) else "POST"
            url = with_query(f"{gateway.base}/wechat/{account}", query)
            await http_status(http, method, url, outcomes, data=body)

    assert not outcomes.problems, _report(outcomes, "WeChat callbacks")
    await normal_conversation(gateway)


async def test_review_webhook(gateway):
    fuzz, outcomes = Fuzz(SEED + 3), Outcomes()
    shapes = {"review": ["id", "author", "rating", "text", "title", "author_id", "created_at"]}
    values = {
        "rating": [1, 5, 3, 0, 6],
        "id": ["r1", "r2", "r3"],
        "author": ["Lin", "王"],
        "text": ["great", "差评，客服不理人", ""],
        "title": ["投诉", "ok"],
    }
    async with aiohttp.ClientSession() as http:
        for _ in range(COUNT):
            review = fuzz.frame(shapes, values)
            review.pop("type", None)
            document = fuzz.rng.choice(
                [review, [review, review], {"reviews": [review]}, fuzz.value()]
            )
            body = fuzz.json_text(document)
            body = body.encode() if isinstance(body, str) else body
            stamp = str(int(time.time()) - fuzz.rng.choice([0, 0, 0, 86400]))
            headers = {"Content-Type": fuzz.rng.choice(["application/json", "text/plain", "x/y"])}
            if fuzz.chance(0.8):
                headers["X-Zhongtai-Timestamp"] = stamp
                headers["X-Zhongtai-Signature"] = (
                    sign_review(REVIEW_SECRET, stamp, body) if fuzz.chance(0.8) else fuzz.header()
                )
            feed = fuzz.rng.choice(
                ["shop", "shop", "shop", "nosuch", quote(fuzz.string(), safe="")]
            )
            await http_status(
                http, "POST", f"{gateway.base}/reviews/{feed}", outcomes, data=body, headers=headers
            )

    assert not outcomes.problems, _report(outcomes, "review webhook")
    await normal_conversation(gateway)


async def test_admin_api(gateway):
    fuzz, outcomes = Fuzz(SEED + 4), Outcomes()
    routes = [
        ("GET", "/api/queues"),
        ("GET", "/api/agents"),
        ("GET", "/api/agents/{}"),
        ("PUT", "/api/agents/{}/status"),
        ("GET", "/api/conversations/{}"),
        ("POST", "/api/conversations/{}/transfer"),
        ("POST", "/api/conversations/{}/close"),
    ]
    shapes = {"body": ["status", "reason", "to_agent", "to_queue", "note"]}
    values = {
        "status": ["available", "away", "offline"],
        "to_agent": ["alice", "carol"],
        "to_queue": ["general"],
    }
    async with aiohttp.ClientSession() as http:
        for _ in range(COUNT):
            method, path = fuzz.rng.choice(routes)
            if fuzz.chance(0.1):
                method = fuzz.rng.choice(["GET", "PUT", "POST", "DELETE", "PATCH"])
            segment = fuzz.rng.choice(["alice", "carol", "c-nope", quote(fuzz.string(), safe="")])
            body = fuzz.json_text(fuzz.frame(shapes, values))
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            if fuzz.chance(0.15):
                headers["Authorization"] = fuzz.rng.choice(
                    ["", "Bearer", "Basic x", f"Bearer {fuzz.header()}"]
                )
            url = f"{gateway.admin_base}{path.format(segment)}"
            await http_status(http, method, url, outcomes, data=body, headers=headers)

    assert not outcomes.problems, _report(outcomes, "admin API")
    await normal_conversation(gateway)
