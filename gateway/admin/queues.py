"""GET /api/queues: every queue as routing sees it now."""

from __future__ import annotations

from aiohttp import web

from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from gateway.admin.snapshots import DEFAULT_WAITING_LIMIT, snapshot_queues
from gateway.admin.views import QueuesResponse, queue_views

MAX_WAITING_LIMIT = 1000


def waiting_limit(request: web.Request) -> int:
    refuse_unknown_parameters(request.query, ("limit",))
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
    services = request_services(request)
    snap = await snapshot_queues(services, waiting_limit(request))
    return json_response(QueuesResponse(queues=queue_views(services, snap)))
