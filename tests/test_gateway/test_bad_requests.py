"""Requests that break HTTP are the client's problem: a request line or header over aiohttp's
8 KB, a request line that is not HTTP, a client hanging up halfway through its body (at the
WeChat callback, the review webhook and the admin API). Each gets a 4xx and at most one
INFO line, never an ERROR with a traceback, and none counts in zhongtai_errors_logged_total."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlencode

import aiohttp
import pytest
from harness import agent, make_config, running
from helpers import wait_until

from adapters.reviews.webhook import sign

TOKEN = "zhongtaiToken42"
SECRET = "s3cret-for-tests"


@pytest.fixture
def config(tenant):
    return make_config(
        tenant,
        admin={"token": "secret"},
        agents=[agent("alice")],
        wechat={
            "accounts": [{"name": "plain", "app_id": "wx1", "app_secret": "s", "token": TOKEN}]
        },
        reviews={"feeds": [{"name": "shop", "webhook_secret": SECRET}]},
    )


async def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def hang_up(port: int, head: str) -> None:
    """Send the head of a request promising 10,000 bytes of body, three of them, and go."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{head}Content-Length: 10000\r\n\r\nabc".encode())
    await writer.drain()
    writer.transport.abort()


def problems(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def errors_logged(gw) -> float:
    """zhongtai_errors_logged_total over every component, as /metrics reports it."""
    async with aiohttp.ClientSession() as http, http.get(gw.admin_base + "/metrics") as reply:
        text = await reply.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("zhongtai_errors_logged_total")
    )


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /webchat/ HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",
        b"GET /webchat/ HTTP/1.1\r\nHost: x\r\n" + b"X-Many: a\r\n" * 1_000 + b"\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",
    ],
    ids=["long-request-line", "long-header", "header-flood", "tls-to-plain-port"],
)
async def test_what_aiohttp_cannot_parse_is_400_and_one_info_line(
    config, redis_url, caplog, request_bytes
):
    caplog.set_level(logging.INFO)
    async with running(config, redis_url) as gw:
        answer = await exchange(gw.port, request_bytes)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0]
        assert not problems(caplog)
        lines = [r for r in caplog.records if r.name == "aiohttp.server"]
        assert len(lines) <= 1
        assert all("\n" not in r.getMessage() for r in lines)
        assert await errors_logged(gw) == 0


async def test_a_client_hanging_up_mid_body_is_no_error(config, redis_url, caplog):
    caplog.set_level(logging.INFO)
    async with running(config, redis_url) as gw:
        stamp, nonce = str(int(time.time())), "n0nce"
        query = urlencode({"signature": sign_oa(stamp, nonce), "timestamp": stamp, "nonce": nonce})
        await hang_up(gw.port, f"POST /wechat/plain?{query} HTTP/1.1\r\nHost: x\r\n")
        stamp = str(int(time.time()))
        await hang_up(
            gw.port,
            f"POST /reviews/shop HTTP/1.1\r\nHost: x\r\nX-Zhongtai-Timestamp: {stamp}\r\n"
            f"X-Zhongtai-Signature: {sign(SECRET, stamp, b'abc')}\r\n",
        )
        await hang_up(
            gw.admin_port,
            "PUT /api/agents/alice/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\n",
        )

        def hung_up() -> list[str]:
            found = [r.getMessage() for r in caplog.records if "hung up" in r.getMessage()]
            return found if len(found) == 3 else []

        lines = await wait_until(hung_up, timeout=10, message="three hang-ups logged")
        assert {line.split(":")[0] for line in lines} == {
            "POST /wechat/plain",
            "POST /reviews/shop",
            "PUT /api/agents/alice/status",
        }
        assert not problems(caplog)
        assert await errors_logged(gw) == 0


def sign_oa(timestamp: str, nonce: str) -> str:
    import hashlib

    return hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
