"""File uploads on the web chat, end to end: POST /webchat/upload, a message naming the file,
the agent's attachment and GET /webchat/files/{id}, through a real gateway and Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from harness import RunningGateway, agent, agent_client, customer, make_config, running
from obs_support import scraped

from adapters.webchat import WebChatConfig

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
PDF = b"%PDF-1.7\n" + b"0" * 100
HTML = b"<!doctype html><script>alert(1)</script>"
LIMIT = 1000


def config(tenant: str, **uploads: Any):
    webchat = {"uploads": {"max_bytes": LIMIT, "per_minute": 0, **uploads}}
    return make_config(tenant, agents=[agent("alice")], webchat=webchat)


async def upload(
    gw: RunningGateway,
    token: str | None,
    body: Any,
    content_type: str = "image/png",
    name: str = "photo.png",
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["X-Visitor-Token"] = token
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gw.base}/webchat/upload", params={"name": name}, data=body, headers=headers
        ) as res,
    ):
        return res.status, await res.json()


async def stored_files(redis, tenant: str) -> list[bytes]:
    return [k async for k in redis.scan_iter(match=f"zt:{{{tenant}}}:ad:webchat:file:*")]


async def test_an_upload_reaches_the_agent_with_a_url_serving_the_same_bytes(
    tenant, redis_url
) -> None:
    async with (
        running(config(tenant), redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        welcome = visitor.frames[0]
        assert welcome["uploads"]["max_bytes"] == LIMIT
        assert "image/png" in welcome["uploads"]["types"]
        token = welcome["visitor_token"]
        status, png = await upload(gw, token, PNG, name="../../etc/my photo.png")
        assert status == 201, png
        assert (png["name"], png["content_type"], png["size"]) == (
            "my photo.png",
            "image/png",
            len(PNG),
        )
        status, pdf = await upload(gw, token, PDF, "application/pdf", "invoice.pdf")
        assert status == 201, pdf

        files = [{"id": png["id"]}, {"id": pdf["id"]}]
        await visitor.send(type="message", text="", attachments=files, client_msg_id="m1")
        echo = await visitor.expect("message", client_msg_id="m1")
        assert [a["url"] for a in echo["message"]["attachments"]] == [png["url"], pdf["url"]]

        offer = await alice.expect("offer")
        [message] = offer["conversation"]["messages"]
        image, document = message["attachments"]
        assert image == {
            "name": "my photo.png",
            "content_type": "image/png",
            "size": len(PNG),
            "url": png["url"],
        }
        async with aiohttp.ClientSession() as http:
            async with http.get(gw.base + image["url"]) as res:
                assert res.status == 200 and await res.read() == PNG
                assert res.content_type == "image/png"
                assert res.headers["X-Content-Type-Options"] == "nosniff"
                assert res.headers["Content-Disposition"].startswith("inline")
            async with http.get(gw.base + document["url"]) as res:
                assert await res.read() == PDF and res.content_type == "application/pdf"
                assert res.headers["Content-Disposition"].startswith("attachment")
                assert res.headers["X-Content-Type-Options"] == "nosniff"
            async with http.get(f"{gw.base}/webchat/files/no-such-file-id-at-all") as res:
                assert res.status == 404


async def test_too_big_is_413_naming_the_limit_and_nothing_is_stored(
    tenant, redis_url, redis
) -> None:
    async with running(config(tenant), redis_url) as gw, customer(gw) as visitor:
        token = visitor.frames[0]["visitor_token"]
        status, body = await upload(gw, token, PNG + bytes(LIMIT))
        assert status == 413 and body["code"] == "too_large"
        assert str(LIMIT) in body["detail"]

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: read and cut off
            yield PNG
            yield bytes(LIMIT)

        status, body = await upload(gw, token, chunked())
        assert status == 413 and str(LIMIT) in body["detail"]
        assert await stored_files(redis, tenant) == []


async def test_content_length_is_refused_before_the_body_is_read(tenant, redis_url) -> None:
    async with running(config(tenant), redis_url) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        # Claims a gigabyte and sends none of it: the answer cannot wait for the body.
        writer.write(
            b"POST /webchat/upload HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"X-Visitor-Token: whatever\r\nContent-Length: 1000000000\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 413")
        writer.close()


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (HTML, "text/html", "unsupported_type"),  # not an allowed type
        (HTML, "image/png", "type_mismatch"),  # an HTML page renamed .png
        (PNG, "image/jpeg", "type_mismatch"),  # a PNG is not a JPEG
        (HTML[:20] + b"\xff\xfe", "text/plain", "type_mismatch"),  # not UTF-8 text
        (PNG, "image/svg+xml", "unsupported_type"),
    ],
)
async def test_wrong_or_disguised_types_are_415(
    tenant, redis_url, redis, body: bytes, content_type: str, code: str
) -> None:
    async with running(config(tenant), redis_url) as gw, customer(gw) as visitor:
        token = visitor.frames[0]["visitor_token"]
        status, answer = await upload(gw, token, body, content_type)
        assert (status, answer["code"]) == (415, code)
        if code == "unsupported_type":
            assert "image/png" in answer["detail"] and "application/pdf" in answer["detail"]
        assert await stored_files(redis, tenant) == []


@pytest.mark.parametrize("token", [None, "", "guessed-token", "x" * 5000])
async def test_a_missing_or_unknown_token_is_400(tenant, redis_url, token: str | None) -> None:
    async with running(config(tenant), redis_url) as gw:
        status, answer = await upload(gw, token, PNG)
        assert (status, answer["code"]) == (400, "bad_token")


async def test_an_empty_body_is_400(tenant, redis_url) -> None:
    async with running(config(tenant), redis_url) as gw, customer(gw) as visitor:
        status, answer = await upload(gw, visitor.frames[0]["visitor_token"], b"")
        assert (status, answer["code"]) == (400, "empty")


async def test_uploads_off_is_a_clear_refusal(tenant, redis_url) -> None:
    async with running(config(tenant, max_bytes=0), redis_url) as gw, customer(gw) as visitor:
        assert "uploads" not in visitor.frames[0]
        status, answer = await upload(gw, visitor.frames[0]["visitor_token"], PNG)
        assert (status, answer["code"]) == (403, "uploads_off")
        assert answer["detail"]


async def test_uploads_per_minute(tenant, redis_url) -> None:
    async with running(config(tenant, per_minute=1), redis_url) as gw, customer(gw) as visitor:
        token = visitor.frames[0]["visitor_token"]
        assert (await upload(gw, token, PNG))[0] == 201
        status, answer = await upload(gw, token, PNG)
        assert (status, answer["code"]) == (429, "rate_limited")
        limit = "webchat.uploads.per_minute"
        assert await scraped(gw.admin_base, "zhongtai_limited_total", limit=limit) == 1


async def test_a_message_may_only_name_the_visitors_own_files(tenant, redis_url) -> None:
    async with (
        running(config(tenant), redis_url) as gw,
        customer(gw) as owner,
        customer(gw) as other,
    ):
        status, png = await upload(gw, owner.frames[0]["visitor_token"], PNG)
        assert status == 201
        for ref in ({"id": png["id"]}, {"id": "no-such-file-id-at-all"}, {"id": "../x"}):
            await other.send(type="message", text="mine", attachments=[ref], client_msg_id="m")
            error = await other.expect("error", client_msg_id="m")
            assert (error["code"], error["field"]) == ("invalid", "attachments")


async def test_the_upload_answers_a_cors_preflight_for_allowed_origins(tenant, redis_url) -> None:
    shop = "https://shop.example.com"
    cfg = make_config(tenant, webchat={"allowed_origins": [shop]})
    async with running(cfg, redis_url) as gw, aiohttp.ClientSession() as http:
        url = f"{gw.base}/webchat/upload"
        async with http.options(url, headers={"Origin": shop}) as res:
            assert res.status == 204
            assert res.headers["Access-Control-Allow-Origin"] == shop
            assert "X-Visitor-Token" in res.headers["Access-Control-Allow-Headers"]
        headers = {"Origin": "https://evil.example.com", "Content-Type": "image/png"}
        async with http.post(url, data=PNG, headers=headers) as res:
            assert res.status == 403
            assert json.loads(await res.text())["code"] == "origin_not_allowed"


def test_upload_config_is_checked() -> None:
    defaults = WebChatConfig().uploads
    assert defaults.max_bytes == 5_000_000 and defaults.enabled
    assert "image/png" in defaults.types and "application/pdf" in defaults.types
    with pytest.raises(msgspec.ValidationError, match="cannot be checked"):
        msgspec.convert({"uploads": {"types": ["image/svg+xml"]}}, WebChatConfig)
    with pytest.raises(msgspec.ValidationError, match=r"uploads\.max_bytes"):
        msgspec.convert({"uploads": {"max_bytes": -1}}, WebChatConfig)
