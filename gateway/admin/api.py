"""The admin API on the admin port, for supervisors and dashboards: queues, agents and
conversations as routing sees them now, and what a supervisor may do (transfer, close, set an
agent's status). Every /api request carries ``Authorization: Bearer <[admin] token>``; JSON in
and out. docs/admin-api.md describes each endpoint."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.model import Conversation
from gateway.config import AgentConfig
from gateway.flows.switchboard import at_ms
from gateway.services import SERVICES, Services
from router.config import QueueConfig
from router.eligibility import share
from router.reads import text
from router.results import RoutingError
from router.route import Route

log = logging.getLogger(__name__)

API_PREFIX = "/api"
MAX_BODY_BYTES = 16 * 1024
DEFAULT_WAITING_LIMIT = 10
MAX_WAITING_LIMIT = 1000
STATUS_SET_BY_SUPERVISOR = "set_by_supervisor"
NOT_CONFIGURED = (
    "the admin token is not configured: set [admin] token (or ZHONGTAI_ADMIN_TOKEN) "
    "to use the admin API"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Errors.


class ApiError(Exception):
    """A refusal with its HTTP status, a machine-readable code and, for bad input, the field."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.field = status, code, detail, field
        self.headers = dict(headers or {})


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    error: str
    detail: str | None = None
    field: str | None = None


# What each RoutingError code becomes; any other code is a conflict with the current state.
ROUTING_STATUS = {
    "unknown_conversation": 404,
    "unknown_agent": 404,
    "unknown_queue": 404,
    "unknown_offer": 404,
    "bad_status": 400,
    "bad_frame": 400,
}
ROUTING_FIELD = {
    "bad_status": "status",
    "unknown_queue": "to_queue",
    "unknown_agent": "to_agent",
    "agent_unavailable": "to_agent",
}
HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def from_routing_error(exc: RoutingError) -> ApiError:
    status = ROUTING_STATUS.get(exc.code, 409)
    return ApiError(status, exc.code, exc.detail, ROUTING_FIELD.get(exc.code))


def decode_problem(exc: msgspec.DecodeError) -> ApiError:
    """A 400 naming the field that made a request body invalid (None: not JSON at all)."""
    problem, _, path = str(exc).partition(" - at `$")
    field = path.rstrip("`").lstrip(".") or None
    if field is None and "`" in problem and ("missing required" in problem or "unknown" in problem):
        field = problem.split("`")[1]
    return ApiError(400, "bad_request", problem, field)


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(value),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(error: ApiError) -> web.Response:
    body = ErrorBody(error=error.code, detail=error.detail, field=error.field)
    return json_response(body, error.status, error.headers)


# Authentication and the error boundary.


def _services(request: web.Request) -> Services:
    # Imported here: gateway.admin.site imports this module to add the routes.
    from gateway.admin.site import MAIN_APP

    return request.config_dict[MAIN_APP][SERVICES]


def _bearer(header: str) -> str | None:
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def authorize(request: web.Request, token: str | None) -> None:
    if not token:
        raise ApiError(403, "admin_token_not_configured", NOT_CONFIGURED)
    presented = _bearer(request.headers.get("Authorization", ""))
    if presented is None:
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <admin token>",
            headers={"WWW-Authenticate": 'Bearer realm="zhongtai-admin"'},
        )
    if not hmac.compare_digest(presented.encode(), token.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "the admin token is wrong",
            headers={"WWW-Authenticate": 'Bearer realm="zhongtai-admin", error="invalid_token"'},
        )


def _from_http(exc: web.HTTPException) -> ApiError:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    code = HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal")
    return ApiError(exc.status, code, exc.reason, headers=headers)


@web.middleware
async def api_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticates every /api request and turns every failure into a JSON error: no
    traceback ever reaches the client."""
    try:
        authorize(request, _services(request).config.core.admin.token)
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except RoutingError as exc:
        return error_response(from_routing_error(exc))
    except web.HTTPException as exc:
        return error_response(_from_http(exc))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("admin API: %s %s: Redis unavailable: %s", request.method, request.path, exc)
        return json_response(ErrorBody(error="unavailable", detail="Redis is unreachable"), 503)
    except Exception:
        log.exception("admin API: %s %s failed", request.method, request.path)
        return json_response(ErrorBody(error="internal"), 500)


# Request bodies.

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TransferBody(Body):
    to_agent: NonEmpty | None = None
    to_queue: NonEmpty | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class CloseBody(Body):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class StatusBody(Body):
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


B = TypeVar("B", bound=Body)


async def read_body(request: web.Request) -> bytes:
    """The request body, refused past MAX_BODY_BYTES whatever Content-Length said."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(8192):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode_body(request: web.Request, type_: type[B]) -> B:
    """The JSON body as ``type_``; an empty body is ``{}``."""
    body = await read_body(request)
    try:
        return msgspec.json.decode(body.strip() or b"{}", type=type_)
    except msgspec.DecodeError as exc:
        raise decode_problem(exc) from None


# Responses.


class Ok(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    conversation_id: str | None = None
    agent: str | None = None
    status: str | None = None


class WaitingConversation(msgspec.Struct, kw_only=True):
    conversation_id: str
    wait_s: float
    priority: int


class QueueView(msgspec.Struct, kw_only=True):
    name: str
    channels: list[str]
    skills: dict[str, int]
    strategy: str
    priority: int
    sla_s: float
    open_now: bool
    depth: int
    oldest_wait_s: float | None
    agents: dict[str, int]  # eligible agents by status
    waiting: list[WaitingConversation]  # the first ones, in routing order
    accept_rate_per_min: float | None  # from the recent accepts; None: too few to tell


class QueuesResponse(msgspec.Struct):
    queues: list[QueueView]


class OfferView(msgspec.Struct, kw_only=True):
    offer_id: str
    conversation_id: str
    expires_in_s: float


class AgentView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    status_reason: str | None
    connected: str | None  # the node holding the agent's socket
    skills: dict[str, int]
    load: dict[str, int]
    capacity: dict[str, int]
    max_total: int | None
    conversations: list[str]
    offers: list[OfferView]


class AgentsResponse(msgspec.Struct):
    agents: list[AgentView]


class PendingOffer(msgspec.Struct, kw_only=True):
    offer_id: str
    agent: str
    expires_in_s: float


class RouteFacts(msgspec.Struct, kw_only=True):
    queue: str
    priority: int
    enqueued_at: datetime | None
    waiting_s: float | None  # while queued or offered
    sla_s: float | None
    escalation_step: int
    required_skills: dict[str, int] | None
    overflow_queues: list[str]
    preferred_agent: str | None
    preferred_until: datetime | None
    leave_message: bool


class ConversationView(msgspec.Struct, kw_only=True):
    conversation: Conversation
    offer: PendingOffer | None
    route: RouteFacts | None


# Reading state.


def seconds_between(later_ms: int, earlier_ms: int) -> float:
    return round(max(0.0, (later_ms - earlier_ms) / 1000), 3)


def accept_rate_per_min(accepts_ms: list[int]) -> float | None:
    """From the queue's recent accept times (newest first), as positions.py estimates waits."""
    if len(accepts_ms) < 2 or accepts_ms[0] <= accepts_ms[-1]:
        return None
    span_min = (accepts_ms[0] - accepts_ms[-1]) / 60_000
    return round((len(accepts_ms) - 1) / span_min, 2)


def status_counts(
    services: Services, queue: QueueConfig, statuses: Mapping[str, str]
) -> dict[str, int]:
    counts = dict.fromkeys(services.actions.statuses(), 0)
    for agent in services.config.agents:
        if share(agent, queue) is not None:
            status = statuses.get(agent.id, "offline")
            counts[status] = counts.get(status, 0) + 1
    return counts


async def waiting_in(
    services: Services, queue: str, limit: int, now_ms: int
) -> list[WaitingConversation]:
    ids = (await services.router.waiting(queue))[:limit]
    routes = await services.router.routes(ids)
    return [
        WaitingConversation(
            conversation_id=c,
            wait_s=seconds_between(now_ms, routes[c].enqueued_ms),
            priority=routes[c].priority,
        )
        for c in ids
        if c in routes
    ]


def waiting_limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_WAITING_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = -1
    if not 0 <= limit <= MAX_WAITING_LIMIT:
        raise ApiError(400, "bad_request", f"a whole number 0..{MAX_WAITING_LIMIT}", "limit")
    return limit


async def get_queues(request: web.Request) -> web.Response:
    services = _services(request)
    limit = waiting_limit(request)
    board = services.switchboard
    now = board.clock()
    stats = await services.router.queue_stats()
    statuses = await services.presence.statuses()
    open_now = set(board.placer.open_queues(now))
    views = []
    for queue in services.config.queues:
        stat = stats.get(queue.name)
        oldest = stat.oldest_enqueued_ms if stat else None
        views.append(
            QueueView(
                name=queue.name,
                channels=queue.channels,
                skills=dict(queue.skills),
                strategy=queue.strategy,
                priority=queue.priority,
                sla_s=queue.sla_s,
                open_now=queue.name in open_now,
                depth=stat.depth if stat else 0,
                oldest_wait_s=None if oldest is None else seconds_between(now, oldest),
                agents=status_counts(services, queue, statuses),
                waiting=await waiting_in(services, queue.name, limit, now),
                accept_rate_per_min=accept_rate_per_min(
                    await services.router.recent_accepts(queue.name)
                ),
            )
        )
    return json_response(QueuesResponse(queues=views))


class PresenceSnapshot(msgspec.Struct, kw_only=True):
    statuses: dict[str, str]
    reasons: dict[str, str]
    nodes: dict[str, str]
    loads: dict[str, dict[str, int]]  # agent -> channel -> open and offered
    offers: dict[str, list[OfferView]]  # agent -> pending offers


def _loads(raw: Mapping[Any, Any]) -> dict[str, dict[str, int]]:
    loads: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        agent, _, channel = text(field).rpartition("|")
        if agent and channel != "*":
            loads.setdefault(agent, {})[channel] = int(value)
    return loads


async def presence_snapshot(services: Services) -> PresenceSnapshot:
    presence = services.presence
    async with presence.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(presence.keys.node)
        pipe.hgetall(presence.keys.load)
        nodes, loads = await pipe.execute()
    now = services.switchboard.clock()
    offers: dict[str, list[OfferView]] = {}
    for offer_id, conversation_id, agent, due in await services.router.pending_offers():
        offers.setdefault(agent, []).append(
            OfferView(
                offer_id=offer_id,
                conversation_id=conversation_id,
                expires_in_s=seconds_between(due, now),
            )
        )
    return PresenceSnapshot(
        statuses=await presence.statuses(),
        reasons=await presence.status_reasons(),
        nodes={text(a): text(n) for a, n in nodes.items()},
        loads=_loads(loads),
        offers=offers,
    )


async def agent_view(services: Services, agent: AgentConfig, snap: PresenceSnapshot) -> AgentView:
    node = snap.nodes.get(agent.id)
    return AgentView(
        id=agent.id,
        name=agent.display_name,
        status=snap.statuses.get(agent.id, "offline"),
        # Why the status was set, while it still applies: a gone socket means offline.
        status_reason=snap.reasons.get(agent.id) if node else None,
        connected=node,
        skills=dict(agent.skills),
        load={c: snap.loads.get(agent.id, {}).get(c, 0) for c in agent.capacity}
        | snap.loads.get(agent.id, {}),
        capacity=dict(agent.capacity),
        max_total=agent.max_total,
        conversations=await services.router.agent_conversation_ids(agent.id),
        offers=sorted(snap.offers.get(agent.id, []), key=lambda o: o.expires_in_s),
    )


def known_agent(services: Services, agent_id: str) -> AgentConfig:
    agent = services.switchboard.agents.get(agent_id)
    if agent is None:
        raise ApiError(404, "unknown_agent", f"no agent {agent_id!r}")
    return agent


async def get_agents(request: web.Request) -> web.Response:
    services = _services(request)
    snap = await presence_snapshot(services)
    views = await asyncio.gather(*(agent_view(services, a, snap) for a in services.config.agents))
    return json_response(AgentsResponse(agents=list(views)))


async def get_agent(request: web.Request) -> web.Response:
    services = _services(request)
    agent = known_agent(services, request.match_info["agent_id"])
    return json_response(await agent_view(services, agent, await presence_snapshot(services)))


def route_facts(
    services: Services, conversation: Conversation, route: Route, now_ms: int
) -> RouteFacts:
    queue = services.switchboard.placer.queues.get(route.queue)
    preferred_until = route.preferred_until_ms
    waiting = conversation.state in ("queued", "offered")
    return RouteFacts(
        queue=route.queue,
        priority=route.priority,
        enqueued_at=at_ms(route.enqueued_ms),
        waiting_s=seconds_between(now_ms, route.enqueued_ms) if waiting else None,
        sla_s=route.sla_s if route.sla_s is not None else queue.sla_s if queue else None,
        escalation_step=route.escalation_steps,
        required_skills=(
            route.skills if route.skills is not None else dict(queue.skills) if queue else None
        ),
        overflow_queues=route.overflow_queues,
        preferred_agent=route.preferred_agent,
        preferred_until=None if preferred_until is None else at_ms(preferred_until),
        leave_message=bool(route.leave_message),
    )


async def pending_offer(
    services: Services, conversation_id: str, now_ms: int
) -> PendingOffer | None:
    for offer_id, conv, agent, due in await services.router.pending_offers():
        if conv == conversation_id:
            return PendingOffer(
                offer_id=offer_id, agent=agent, expires_in_s=seconds_between(due, now_ms)
            )
    return None


async def known_conversation(services: Services, conversation_id: str) -> Conversation:
    conversation = await services.router.conversation(conversation_id)
    if conversation is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {conversation_id!r}")
    return conversation


async def get_conversation(request: web.Request) -> web.Response:
    services = _services(request)
    conversation = await known_conversation(services, request.match_info["conversation_id"])
    now = services.switchboard.clock()
    route = await services.router.route(conversation.id)
    view = ConversationView(
        conversation=conversation,
        offer=await pending_offer(services, conversation.id, now),
        route=None if route is None else route_facts(services, conversation, route, now),
    )
    return json_response(view)


# Actions.


async def open_conversation(services: Services, conversation_id: str) -> Conversation:
    conversation = await known_conversation(services, conversation_id)
    if conversation.state == "closed":
        raise ApiError(409, "closed", f"conversation {conversation_id} is closed")
    return conversation


async def transfer(request: web.Request) -> web.Response:
    services = _services(request)
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
    services = _services(request)
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


async def set_status(request: web.Request) -> web.Response:
    services = _services(request)
    agent = known_agent(services, request.match_info["agent_id"])
    body = await decode_body(request, StatusBody)
    await services.actions.set_status(agent.id, body.status, STATUS_SET_BY_SUPERVISOR)
    log.info("supervisor set %s %s", agent.id, body.status, extra={"agent": agent.id})
    return json_response(Ok(ok=True, agent=agent.id, status=body.status))


def build_api_app() -> web.Application:
    api = web.Application(middlewares=[api_boundary])
    api.router.add_get("/queues", get_queues)
    api.router.add_get("/agents", get_agents)
    api.router.add_get("/agents/{agent_id}", get_agent)
    api.router.add_put("/agents/{agent_id}/status", set_status)
    api.router.add_get("/conversations/{conversation_id}", get_conversation)
    api.router.add_post("/conversations/{conversation_id}/transfer", transfer)
    api.router.add_post("/conversations/{conversation_id}/close", close)
    return api


def add_api_routes(admin_app: web.Application) -> None:
    """Mount the API under /api on the admin app; /metrics, /healthz and /readyz stay open."""
    admin_app.add_subapp(API_PREFIX, build_api_app())
