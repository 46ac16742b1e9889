"""Slowloris through the public port: a raw socket trickling a header line every second, or
a body a few bytes at a time, is closed once its deadline passes (408 for headers), and
counted; a client that sends in time is answered as before."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from harness import connect, make_config, running

from gateway.guard.deadlines import DeadlineHandler

# Short deadlines so the test is quick; the trickle keeps sending well past them.
HEADER_S, BODY_S = 1.5, 1.5
GIVE_UP_S = 20.0


@pytest.fixture
def config(tenant):
    return make_config(
        tenant,
        server={"tenant": tenant, "header_timeout_s": HEADER_S, "body_timeout_s": BODY_S},
        reviews={"feeds": [{"name": "shop", "webhook_secret": "s3cret"}]},
    )


async def _trickle(port: int, first: bytes, drip: bytes, every_s: float) -> tuple[bytes, float]:
    """Send ``first``, then ``drip`` every ``every_s`` until the gateway closes; what it
    answered and how long the connection lived. Fails after GIVE_UP_S."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = loop.time()
    answer = b""
    try:
        writer.write(first)
        async with asyncio.timeout(GIVE_UP_S):
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), timeout=every_s)
                except TimeoutError:
                    writer.write(drip)  # a peer gone by now makes this a no-op or an error
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    continue
                except ConnectionError:
                    break
                if not chunk:
                    break
                answer += chunk
    finally:
        writer.close()
    return answer, loop.time() - started


async def _slow_closed(gw, phase: str) -> float:
    return gw.services.metrics.slow_clients.labels(phase)._value.get()


@pytest.mark.parametrize("path", ["/webchat/ws", "/reviews/shop", "/wechat/x", "/agent/ws"])
async def test_headers_trickled_a_line_a_second_are_cut_off(config, redis_url, path):
    async with running(config, redis_url) as gw:
        first = f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
        answer, lived = await _trickle(gw.port, first, b"X-Slow: 1\r\n", every_s=1.0)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert HEADER_S <= lived < HEADER_S + 5, lived
        assert await _slow_closed(gw, "headers") == 1


async def test_a_connection_that_sends_nothing_is_closed(config, redis_url):
    async with running(config, redis_url) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        async with asyncio.timeout(GIVE_UP_S):
            answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")


async def test_a_trickled_body_is_cut_off(config, redis_url):
    async with running(config, redis_url) as gw:
        head = (
            b"POST /reviews/shop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        _, lived = await _trickle(gw.port, head, b" ", every_s=0.5)
        assert BODY_S <= lived < BODY_S + 5, lived
        assert await _slow_closed(gw, "body") == 1


async def test_prompt_clients_and_kept_alive_connections_are_served(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        for _ in range(3):  # one kept-alive connection, idle between requests
            async with http.get(f"{gw.base}/console/") as reply:
                assert reply.status == 200
            await asyncio.sleep(0)
        assert await _slow_closed(gw, "headers") == 0
        assert await _slow_closed(gw, "body") == 0


async def test_a_websocket_outlives_the_header_deadline(config, redis_url):
    """Frames after the upgrade are no request: a socket talking for longer than the header
    deadline is not cut off (it was once, 408 bytes written into the socket's stream)."""
    async with running(config, redis_url) as gw, connect(gw.ws_url("/webchat/ws")) as visitor:
        await visitor.send(type="hello")
        await visitor.expect("welcome")
        loop = asyncio.get_running_loop()
        until = loop.time() + HEADER_S * 2
        while loop.time() < until:  # talking all along, past the deadline
            await visitor.send(type="hello")
            await visitor.expect("error", code="already_hello")
            await asyncio.sleep(0.2)
        await visitor.send(type="hello")
        await visitor.expect("error", code="already_hello")
        assert await _slow_closed(gw, "headers") == 0


def test_the_aiohttp_internals_the_deadline_reads_are_there():
    names = ("_request_count", "_messages", "_upgraded", "_payload_parser", "_force_close")
    names += ("_request_in_progress",)
    for name in (*names, "_loop"):
        assert name in DeadlineHandler.__slots__ or any(
            name in getattr(cls, "__slots__", ()) for cls in DeadlineHandler.__mro__
        ), name
