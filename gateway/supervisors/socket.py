"""The supervisor websocket endpoint, /supervisor/ws: authenticate a team lead, welcome
them, then keep their wallboard live and carry out their frames. Modelled on the agent
socket (gateway/agents/socket.py): the same hello, the same close codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from aiohttp import WSMsgType, web

from adapters.inputs import decode_json
from gateway.agents.handshake import sign_in
from gateway.agents.protocol import Hello
from gateway.config import SupervisorConfig
from gateway.logs import set_log_fields
from gateway.services import SERVICES, Services
from gateway.supervisors.commands import handle
from gateway.supervisors.protocol import (
    PROTOCOL_VERSION,
    Error,
    SupervisorInfo,
    Welcome,
    bad_frame,
    client_decoder,
    encode,
    hello_decoder,
)
from gateway.supervisors.scope import scope_of
from gateway.supervisors.session import SupervisorSession
from gateway.supervisors.wallboard import WALLBOARD_READS

log = logging.getLogger(__name__)

# The reasons a conversation's close carries (docs/protocol.md), for the lead's view.
CLOSE_REASONS = ["closed_by_agent", "closed_by_supervisor", "transferred", "inactive", "max_wait"]


def authenticate(services: Services, token: str | None) -> SupervisorConfig | None:
    if not token:
        return None
    for lead in services.config.core.supervisors:
        if lead.token_matches(token):
            return lead
    return None


def _hello_of(data: bytes) -> Hello | bytes:
    try:
        return decode_json(hello_decoder.decode, data)
    except msgspec.DecodeError as exc:
        error = bad_frame(exc)
        if error.field == "type":
            error = Error(code="hello_expected", detail="the first frame is hello", field="type")
        return encode(error)


def _error(code: str, detail: str, field: str | None) -> bytes:
    return encode(Error(code=code, detail=detail, field=field))


async def supervisor_socket(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    server = services.config.server
    ws = web.WebSocketResponse(
        heartbeat=server.heartbeat_s, max_msg_size=server.max_frame_bytes, decode_text=False
    )
    await ws.prepare(request)
    lead = await sign_in(
        request,
        ws,
        version=PROTOCOL_VERSION,
        decode=_hello_of,
        error=_error,
        authenticate=lambda token: authenticate(services, token),
        timeout_s=server.hello_timeout_s,
        on_timeout=services.metrics.slow_clients.labels("hello").inc,
    )
    if lead is None:
        return ws
    scope = scope_of(services.config, lead)
    session = SupervisorSession(services, scope, ws, request.app.get(WALLBOARD_READS))
    await _run(services, session)
    return ws


def welcome(services: Services, session: SupervisorSession) -> Welcome:
    lead = session.lead
    return Welcome(
        supervisor=SupervisorInfo(
            id=lead.id, name=lead.display_name, queues=list(session.scope.queues), agent=lead.agent
        ),
        statuses=services.actions.statuses(),
        not_ready_reasons=list(services.config.routing.not_ready_reasons),
        close_reasons=list(CLOSE_REASONS),
    )


async def _run(services: Services, session: SupervisorSession) -> None:
    set_log_fields(supervisor=session.lead.id)
    services.metrics.websockets.labels("supervisor").inc()
    session.push(welcome(services, session))
    tasks = [
        asyncio.create_task(session.run_writer(), name=f"supervisor-{session.lead.id}-writer"),
        asyncio.create_task(session.run_wallboard(), name=f"supervisor-{session.lead.id}-board"),
    ]
    sockets = services.supervisor_sockets
    sockets.add(session.ws)
    log.info("supervisor %s connected", session.lead.id)
    try:
        await _serve_frames(services, session)
    finally:
        sockets.discard(session.ws)
        session.forget()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        services.metrics.websockets.labels("supervisor").dec()
        log.info("supervisor %s disconnected", session.lead.id)


async def _serve_frames(services: Services, session: SupervisorSession) -> None:
    async for msg in session.ws:
        if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        try:
            frame = decode_json(client_decoder.decode, msg.data)
        except msgspec.DecodeError as exc:
            session.push(bad_frame(exc, _request_id_of(msg.data)))
            continue
        await handle(services, session, frame)


def _request_id_of(data: bytes | str) -> str | None:
    """The request_id of a frame that failed to decode, when it has a readable one, so the
    client can tell which request the error answers."""
    try:
        found = decode_json(msgspec.json.decode, data)
    except msgspec.DecodeError:
        return None
    request_id = found.get("request_id") if isinstance(found, dict) else None
    return request_id if isinstance(request_id, str) else None
