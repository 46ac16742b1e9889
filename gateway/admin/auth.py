"""The admin API's one gate: ``Authorization: Bearer <[admin] token>`` on every request,
compared in constant time. Without a configured token the API refuses everything (403)
rather than serve anyone. The QA routes also take a team lead's own supervisor token, and
then act for that lead (authorize_lead)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from aiohttp import web

from gateway.admin.errors import ApiError
from gateway.config import SupervisorConfig

NOT_CONFIGURED = (
    "the admin token is not configured: set [admin] token (or ZHONGTAI_ADMIN_TOKEN) "
    "to use the admin API"
)


def bearer(header: str) -> str | None:
    """The credentials of an ``Authorization: Bearer ...`` header; None for any other."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def authorize(request: web.Request, token: str | None) -> None:
    if not token:
        raise ApiError(403, "admin_token_not_configured", NOT_CONFIGURED)
    presented = bearer(request.headers.get("Authorization", ""))
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


def authorize_lead(
    request: web.Request, token: str | None, leads: Sequence[SupervisorConfig]
) -> SupervisorConfig | None:
    """The team lead whose token the request carries, or None for the admin token."""
    presented = bearer(request.headers.get("Authorization", ""))
    if presented is None:
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <admin token or your supervisor token>",
            headers={"WWW-Authenticate": 'Bearer realm="zhongtai-admin"'},
        )
    if token and hmac.compare_digest(presented.encode(), token.encode()):
        return None
    for lead in leads:
        if lead.token_matches(presented):
            return lead
    raise ApiError(
        401,
        "unauthorized",
        "the token is neither the admin token nor a team lead's",
        headers={"WWW-Authenticate": 'Bearer realm="zhongtai-admin", error="invalid_token"'},
    )
