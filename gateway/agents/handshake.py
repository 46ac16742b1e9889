"""The hello that both people's websockets begin with, the agents' (/agent/ws) and the team
leads' (/supervisor/ws): one place for the hello timeout, the protocol check, where the token
may travel (hello or an ``Authorization: Bearer`` header) and the close codes, so that the two
sockets cannot drift apart. Each socket keeps its own frames: it says how to decode its hello
and how to word an error in its protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import WSMsgType, web

from gateway.agents.protocol import CLOSE_BAD_TOKEN, CLOSE_UNSUPPORTED, Hello

Who = TypeVar("Who")
# (code, detail, field) -> the encoded error frame of the socket's own protocol.
ErrorFrame = Callable[[str, str, str | None], bytes]
# The first frame -> its hello, or the encoded error frame saying why it is none.
HelloDecoder = Callable[[bytes], Hello | bytes]


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _send(ws: web.WebSocketResponse, data: bytes) -> None:
    if not ws.closed:
        await ws.send_frame(data, WSMsgType.TEXT)


async def _read_hello(
    ws: web.WebSocketResponse,
    decode: HelloDecoder,
    error: ErrorFrame,
    timeout_s: float,
    on_timeout: Callable[[], None],
) -> Hello | None:
    """The first frame must be hello; anything else is answered and None returned."""
    try:
        # A deadline of our own: aiohttp's receive(timeout=) starts again on every pong it
        # absorbs, so a client that answers heartbeats and never says hello would stay forever.
        async with asyncio.timeout(timeout_s or None):
            msg = await ws.receive()
    except TimeoutError:
        on_timeout()
        await _send(ws, error("hello_timeout", "send hello first", None))
        return None
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    decoded = decode(msg.data)
    if isinstance(decoded, Hello):
        return decoded
    await _send(ws, decoded)
    return None


async def sign_in(
    request: web.Request,
    ws: web.WebSocketResponse,
    *,
    version: int,
    decode: HelloDecoder,
    error: ErrorFrame,
    authenticate: Callable[[str | None], Who | None],
    timeout_s: float,
    on_timeout: Callable[[], None],
) -> Who | None:
    """Who sent a good hello with a known token; None after answering and closing.
    ``timeout_s`` is ``[server] hello_timeout_s`` (0: none); ``on_timeout`` counts a socket
    closed for sending no hello in time (a slow client)."""
    hello = await _read_hello(ws, decode, error, timeout_s, on_timeout)
    if hello is None:
        await ws.close(code=CLOSE_BAD_TOKEN, message=b"hello with a token expected")
        return None
    if hello.protocol != version:
        detail = f"this gateway speaks protocol {version}"
        await _send(ws, error("unsupported_protocol", detail, "protocol"))
        await ws.close(code=CLOSE_UNSUPPORTED, message=b"unsupported protocol")
        return None
    who = authenticate(hello.token or bearer(request))
    if who is None:
        await _send(ws, error("bad_token", "unknown or missing token", "token"))
        await ws.close(code=CLOSE_BAD_TOKEN, message=b"bad token")
        return None
    return who
