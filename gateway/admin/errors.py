"""Every refusal of the admin API as one JSON shape, ``{"error", "detail", "field"}``: the
refusal itself (ApiError), what routing errors, aiohttp's HTTP errors and undecodable bodies
become, and the one JSON encoder every answer goes through. docs/admin-api.md lists them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from aiohttp import web

from router.results import RoutingError


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


def refuse_unknown_parameters(given: Iterable[str], known: Sequence[str] = ()) -> None:
    """A query parameter the route does not take is a 400 naming it: a typo (``stauts``)
    silently ignored would answer something else than was asked. Every admin GET calls this,
    with ``known`` empty where the route takes no parameters."""
    for name in given:
        if name not in known:
            takes = f"the parameters are {', '.join(known)}" if known else "this takes none"
            raise ApiError(400, "bad_request", f"{name}: unknown parameter; {takes}", name)


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


def from_http(exc: web.HTTPException) -> ApiError:
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    code = HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal")
    return ApiError(exc.status, code, exc.reason, headers=headers)


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
