"""/api/conversations: one conversation with its route and pending offer, and what a
supervisor may do to it (transfer, close)."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from aiohttp import web

from adapters.model import Conversation
from gateway.admin.bodies import Body, NonEmpty, decode_body
from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from gateway.admin.quality_views import csat_view
from gateway.admin.snapshots import snapshot_conversation
from gateway.admin.views import Ok, conversation_view
from gateway.services import Services

# Named as before the API was cut into modules, so that log configurations that pick out
# the supervisors' actions keep working.
log = logging.getLogger("gateway.admin.api")


class TransferBody(Body):
    to_agent: NonEmpty | None = None
    to_queue: NonEmpty | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class CloseBody(Body):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


async def known_conversation(services: Services, conversation_id: str) -> Conversation:
    conversation = await services.router.conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {conversation_id!r}")
    return conversation


async def open_conversation(services: Services, conversation_id: str) -> Conversation:
    conversation = await known_conversation(services, conversation_id)
    if conversation.state == "closed":
        raise ApiError(409, "closed", f"conversation {conversation_id} is closed")
    return conversation


async def get_conversation(request: web.Request) -> web.Response:
    refuse_unknown_parameters(request.query)
    services = request_services(request)
    conversation = await known_conversation(services, request.match_info["conversation_id"])
    snap = await snapshot_conversation(services, conversation)
    view = conversation_view(services, snap)
    view.csat = csat_view(await services.router.csat_of(conversation.id))
    return json_response(view)


async def transfer(request: web.Request) -> web.Response:
    services = request_services(request)
    conversation_id = request.match_info["conversation_id"]
    body = await decode_body(request, TransferBody)
    if body.to_agent is None and body.to_queue is None:
        raise ApiError(400, "bad_request", "name to_agent or to_queue", "to_agent")
    await open_conversation(services, conversation_id)
    await services.actions.transfer(None, conversation_id, body.to_agent, body.to_queue, body.note)
    log.info(
        "supervisor transferred %s to %s",
        conversation_id,
        body.to_agent or body.to_queue,
        extra={"conversation": conversation_id},
    )
    return json_response(Ok(ok=True, conversation_id=conversation_id))


async def close(request: web.Request) -> web.Response:
    services = request_services(request)
    conversation_id = request.match_info["conversation_id"]
    body = await decode_body(request, CloseBody)
    await open_conversation(services, conversation_id)
    await services.actions.close(None, conversation_id)
    log.info(
        "supervisor closed %s: %s",
        conversation_id,
        body.reason or "no reason given",
        extra={"conversation": conversation_id},
    )
    return json_response(Ok(ok=True, conversation_id=conversation_id))
