"""The agent websocket endpoint, /agent/ws: authenticate, welcome, then carry out frames."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import WSMsgType, web

from adapters import retryable
from adapters.contract import DeliveryError
from adapters.inputs import decode_json
from adapters.retryable import redis_unavailable
from gateway.agents.handshake import sign_in
from gateway.agents.protocol import (
    PROTOCOL_VERSION,
    Accept,
    AddNote,
    ClientFrame,
    Close,
    Decline,
    Error,
    Hello,
    HistoryRequest,
    Ping,
    Pong,
    Reply,
    SetStatus,
    Transfer,
    client_decoder,
    decode_error,
    encode,
)
from gateway.agents.sessions import AgentSession
from gateway.agents.welcome import build_welcome
from gateway.config import AgentConfig
from gateway.logs import ids_of, set_log_fields
from gateway.services import SERVICES, Services
from router.ids import new_id
from router.results import RoutingError

log = logging.getLogger(__name__)


def authenticate(services: Services, token: str | None) -> AgentConfig | None:
    if not token:
        return None
    for agent in services.config.agents:
        if agent.token_matches(token):
            return agent
    return None


def _hello_of(data: bytes) -> Hello | bytes:
    try:
        frame = decode_json(client_decoder.decode, data)
    except msgspec.DecodeError as exc:
        return encode(decode_error(exc))
    if not isinstance(frame, Hello):
        return encode(Error(code="hello_expected", detail="the first frame is hello"))
    return frame


def _error(code: str, detail: str, field: str | None) -> bytes:
    return encode(Error(code=code, detail=detail, field=field))


async def agent_socket(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    server = services.config.server
    ws = web.WebSocketResponse(
        heartbeat=server.heartbeat_s, max_msg_size=server.max_frame_bytes, decode_text=False
    )
    await ws.prepare(request)
    agent = await sign_in(
        request,
        ws,
        version=PROTOCOL_VERSION,
        decode=_hello_of,
        error=_error,
        authenticate=lambda token: authenticate(services, token),
        timeout_s=server.hello_timeout_s,
        on_timeout=services.metrics.slow_clients.labels("hello").inc,
    )
    if agent is None:
        return ws
    session = AgentSession(agent, ws, new_id("k"))
    await _run_session(services, session)
    return ws


async def _run_session(services: Services, session: AgentSession) -> None:
    agent = session.agent
    set_log_fields(agent=agent.id)
    board = services.switchboard
    await services.sessions.add(session)
    services.metrics.websockets.labels("agent").inc()
    try:
        connected = await services.presence.connect(
            agent.id,
            services.node_id,
            session.connection_id,
            services.config.presence.initial_status,
        )
        if connected.previous_node and connected.previous_node != services.node_id:
            await services.sessions.replace_remote(
                agent.id, connected.previous_node, connected.previous_connection or ""
            )
        welcome, offers = await build_welcome(services, agent, connected.status)
        await session.open(welcome, offers)
        board.request_dispatch()
        board.tap.changed()
        log.info("agent %s connected (%s)", agent.id, session.connection_id)
        await _serve_frames(services, session)
    finally:
        set_log_fields(agent=agent.id)
        services.sessions.remove(session)
        services.metrics.websockets.labels("agent").dec()
        try:
            await asyncio.shield(
                services.presence.disconnect(agent.id, session.connection_id, board.clock())
            )
        except Exception:
            log.exception("could not record agent %s's disconnect", agent.id)
        board.tap.changed()
        log.info("agent %s disconnected (%s)", agent.id, session.connection_id)


async def _serve_frames(services: Services, session: AgentSession) -> None:
    async for msg in session.ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            frame = decode_json(client_decoder.decode, msg.data)
        except msgspec.DecodeError as exc:
            await session.send(decode_error(exc))
            continue
        try:
            set_log_fields(agent=session.agent.id, **ids_of(frame))
            await _handle(services, session, frame)
        except RoutingError as exc:
            await session.send(_error_for(frame, exc.code, exc.detail))
        except DeliveryError as exc:
            await session.send(_error_for(frame, "channel_error", f"{exc.code}: {exc.detail}"))
        except Exception as exc:
            if redis_unavailable(exc):  # Redis loading or away a moment: send it again soon
                await session.send(_error_for(frame, retryable.CODE, retryable.DETAIL))
                continue
            log.exception("agent %s: %s frame failed", session.agent.id, type(frame).__name__)
            await session.send(_error_for(frame, "internal", "the gateway failed; try again"))


# The field an error code is about, where one field alone is.
ERROR_FIELDS = {"bad_close_reason": "reason"}


def _error_for(frame: ClientFrame, code: str, detail: str) -> Error:
    error = Error(code=code, detail=detail, field=ERROR_FIELDS.get(code))
    if isinstance(frame, AddNote) and code == "bad_frame":
        error.field = "text"
    if isinstance(frame, Reply):
        error.client_msg_id = frame.client_msg_id
        error.conversation_id = frame.conversation_id
    elif isinstance(frame, Close | Transfer | AddNote | HistoryRequest):
        error.conversation_id = frame.conversation_id
    elif isinstance(frame, Accept | Decline):
        error.offer_id = frame.offer_id
    return error


async def _handle(services: Services, session: AgentSession, frame: ClientFrame) -> None:
    actions = services.actions
    match frame:
        case Accept(offer_id=offer_id):
            await actions.accept(session, offer_id)
        case Decline(offer_id=offer_id, reason=reason):
            await actions.decline(session, offer_id, reason)
        case Reply():
            await actions.reply(
                session,
                frame.conversation_id,
                frame.text,
                frame.client_msg_id,
                frame.attachments,
                frame.subject,
            )
        case Close(conversation_id=conversation_id, reason=reason):
            await actions.close(session.agent, conversation_id, reason)
        case AddNote(conversation_id=conversation_id, text=text):
            await actions.note(session.agent, conversation_id, text)
        case HistoryRequest(conversation_id=conversation_id):
            await actions.history(session, conversation_id)
        case SetStatus(status=status):
            await actions.set_status(session.agent.id, status)
        case Transfer():
            await actions.transfer(
                session.agent, frame.conversation_id, frame.to_agent, frame.to_queue, frame.note
            )
        case Ping():
            await session.send(Pong())
        case Hello():
            raise RoutingError("bad_frame", "already said hello")
