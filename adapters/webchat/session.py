"""One customer socket's state, and the few ways a frame goes out on it.

Kept apart from the adapter so that the socket registry (sockets.py) and the frame handlers
(handlers.py) share one notion of a session without importing each other.
"""

from __future__ import annotations

import dataclasses

import aiohttp
from aiohttp import web

from adapters.webchat import frames, prechat
from adapters.webchat.limits import TokenBucket

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_HELLO_TIMEOUT = 4408


@dataclasses.dataclass(eq=False)
class Session:
    """One customer socket."""

    ws: web.WebSocketResponse
    # The socket's own burst of messages_per_minute.
    bucket: TokenBucket
    visitor_id: str | None = None
    # The token of a visitor made by this socket's hello, until their first message.
    fresh_token: str | None = None
    # Who is at the other end (limits.client_address), for the per-address limit.
    address: str = "unknown"
    # The visitor's pre-chat answers, once known (read at hello, saved with a message).
    profile: prechat.Profile | None = None


def error(
    code: str, detail: str, field: str | None = None, client_msg_id: str | None = None
) -> frames.ErrorFrame:
    return frames.ErrorFrame(code=code, detail=detail, field=field, client_msg_id=client_msg_id)


async def reply(ws: web.WebSocketResponse, frame: frames.Frame) -> None:
    await send_raw(ws, frames.encode(frame))


async def send_raw(ws: web.WebSocketResponse, buf: bytes) -> None:
    if ws.closed:
        return
    try:
        await ws.send_frame(buf, aiohttp.WSMsgType.TEXT)
    except ConnectionError:
        pass  # the socket went away meanwhile; its handler cleans up
