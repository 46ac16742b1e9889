"""The admin API on the admin port, for supervisors and dashboards: queues, agents and
conversations as routing sees them now, and what a supervisor may do (transfer, close, set an
agent's status), and the QA queue team leads score from. Every /api request carries
``Authorization: Bearer <[admin] token>`` (the QA routes take a lead's own token too); JSON in
and out. docs/admin-api.md describes each endpoint.

This module is the route table and the boundary every request passes; the handlers are by
resource (queues.py, agents.py, conversations.py), the answers in views.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.inputs import client_fault
from gateway.admin import agents, conversations, history, quality, queues, reports
from gateway.admin.auth import authorize, authorize_lead
from gateway.admin.errors import (
    ApiError,
    ErrorBody,
    error_response,
    from_http,
    from_routing_error,
    json_response,
)
from gateway.admin.keys import request_services
from gateway.events.admin import add_webhook_routes
from router.results import RoutingError

log = logging.getLogger(__name__)

API_PREFIX = "/api"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticates every /api request and turns every failure into a JSON error: no
    traceback ever reaches the client."""
    try:
        core = request_services(request).config.core
        if request.match_info.handler in LEAD_HANDLERS:
            request[quality.LEAD] = authorize_lead(request, core.admin.token, core.supervisors)
        else:
            authorize(request, core.admin.token)
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except RoutingError as exc:
        return error_response(from_routing_error(exc))
    except web.HTTPException as exc:
        return error_response(from_http(exc))
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("admin API: %s %s: Redis unavailable: %s", request.method, request.path, exc)
        return json_response(ErrorBody(error="unavailable", detail="Redis is unreachable"), 503)
    except Exception as exc:
        if client_fault(request, exc):
            raise  # a hang-up or a broken body: gateway/badrequests.py answers it
        log.exception("admin API: %s %s failed", request.method, request.path)
        return json_response(ErrorBody(error="internal"), 500)


# The routes a team lead's own supervisor token opens too (for the queues they lead).
LEAD_HANDLERS = frozenset({quality.get_qa, quality.get_qa_item, quality.score_qa})


def build_api_app() -> web.Application:
    api = web.Application(middlewares=[api_boundary])
    api.router.add_get("/queues", queues.get_queues)
    api.router.add_get("/agents", agents.get_agents)
    api.router.add_get("/agents/{agent_id}", agents.get_agent)
    api.router.add_put("/agents/{agent_id}/status", agents.set_status)
    api.router.add_get("/conversations", history.list_conversations)
    api.router.add_get("/conversations/{conversation_id}", conversations.get_conversation)
    api.router.add_get("/conversations/{conversation_id}/transcript", history.transcript)
    api.router.add_post("/conversations/{conversation_id}/transfer", conversations.transfer)
    api.router.add_post("/conversations/{conversation_id}/close", conversations.close)
    api.router.add_get("/qa", quality.get_qa)
    api.router.add_get("/qa/{conversation_id}", quality.get_qa_item)
    api.router.add_post("/qa/{conversation_id}", quality.score_qa)
    api.router.add_get("/reports/agents", reports.agents_report)
    api.router.add_get("/reports/queues", reports.queues_report)
    add_webhook_routes(api)
    return api


def add_api_routes(admin_app: web.Application) -> None:
    """Mount the API under /api on the admin app; /metrics, /healthz and /readyz stay open."""
    admin_app.add_subapp(API_PREFIX, build_api_app())
