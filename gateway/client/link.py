"""One connection to the agent socket: connect, hello and welcome, then read until it ends.

`AgentClient` (connection.py) strings connections together across drops; this module is
only what one connection does, and how its end is told apart: fatal (a refused token, a
newer connection of the same agent, another protocol version) or worth a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gateway.agents.protocol import (
    CLOSE_BAD_TOKEN,
    CLOSE_REPLACED,
    CLOSE_UNSUPPORTED,
    PROTOCOL_VERSION,
    Error,
    Hello,
    ServerFrame,
    Welcome,
    encode,
    server_decoder,
)
from gateway.client.errors import AuthenticationFailed, ProtocolMismatch, Replaced

# The library's one logger, named as before the split, so that log configurations that
# pick it out keep working.
log = logging.getLogger("gateway.client.connection")


class Drop(msgspec.Struct, kw_only=True):
    """How one connection ended, when ending it was not fatal."""

    code: int | None = None
    reason: str = ""
    error: BaseException | None = None
    welcomed: bool = False


async def run_link(
    url: str,
    token: str,
    *,
    max_size: int | None,
    open_timeout_s: float,
    ping_interval_s: float | None,
    on_welcome: Callable[[ClientConnection, Welcome], None],
    on_frame: Callable[[ServerFrame], None],
    on_down: Callable[[], None],
) -> Drop:
    """One connection: connect, hello/welcome, read until it ends.

    Returns how a non-fatal end happened; raises the fatal ones. `on_down` runs before the
    socket is closed, so that nothing is sent on a connection that is going.
    """
    try:
        ws = await connect(
            url, max_size=max_size, open_timeout=open_timeout_s, ping_interval=ping_interval_s
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise AuthenticationFailed(f"the gateway refused the token (HTTP {status})") from exc
        return Drop(reason=f"HTTP {status}", error=exc)
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        return Drop(reason=str(exc) or type(exc).__name__, error=exc)
    handshake_errors: list[Error] = []
    welcomed = False
    try:
        welcome = await _handshake(ws, token, open_timeout_s, handshake_errors)
        on_welcome(ws, welcome)
        welcomed = True
        while True:
            frame = _decode(await ws.recv(decode=False))
            if frame is not None:
                on_frame(frame)
    except ConnectionClosed:
        pass
    except TimeoutError as exc:
        return Drop(reason="no welcome from the gateway", error=exc)
    finally:
        on_down()
        await ws.close()
    return _classify(ws, handshake_errors, welcomed)


async def _handshake(
    ws: ClientConnection, token: str, timeout_s: float, errors: list[Error]
) -> Welcome:
    await ws.send(encode(Hello(token=token, protocol=PROTOCOL_VERSION)), text=True)
    async with asyncio.timeout(timeout_s):
        while True:
            frame = _decode(await ws.recv(decode=False))
            if isinstance(frame, Welcome):
                if frame.protocol != PROTOCOL_VERSION:
                    raise ProtocolMismatch(
                        f"the gateway speaks protocol {frame.protocol}, "
                        f"this client {PROTOCOL_VERSION}"
                    )
                return frame
            if isinstance(frame, Error):
                if frame.code == "unsupported_protocol":
                    raise ProtocolMismatch(frame.detail)
                # The close that follows says what it meant; keep it for the message.
                errors.append(frame)
            elif frame is not None:
                log.warning("frame before welcome ignored: %r", frame)


def _decode(raw: Any) -> ServerFrame | None:
    """A server frame, or None for one this client cannot read (a newer frame type, say)."""
    try:
        return server_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        log.warning("unreadable frame from the gateway skipped: %s", exc)
        return None


def _classify(ws: ClientConnection, errors: list[Error], welcomed: bool) -> Drop:
    code, reason = ws.close_code, ws.close_reason or ""
    detail = reason or (errors[-1].detail if errors else "")
    if code == CLOSE_BAD_TOKEN:
        raise AuthenticationFailed(detail or "the gateway refused the token")
    if code == CLOSE_REPLACED:
        raise Replaced(detail or "replaced by a newer connection of the same agent")
    if code == CLOSE_UNSUPPORTED:
        raise ProtocolMismatch(detail or "the gateway does not speak protocol 1")
    return Drop(
        code=code,
        reason=f"closed with code {code}" + (f": {detail}" if detail else ""),
        welcomed=welcomed,
    )


def describe_close(exc: ConnectionClosed) -> str:
    """The close code of a connection that ended under a send, for NotConnected's message."""
    close = exc.rcvd or exc.sent
    return f"code {close.code}" if close is not None else "no close frame"
