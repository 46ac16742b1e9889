"""/api/webhooks: each configured webhook with its lag and dead letters, the dead letters
themselves (a page at a time), and the replay of one. Dead letters live in Redis, so any
process answers and any process's delivery loop sends a replay."""

from __future__ import annotations

import msgspec
from aiohttp import web

from gateway.admin.errors import ApiError, json_response
from gateway.admin.keys import request_services
from gateway.events.config import WebhookConfig
from gateway.events.store import Parked, WebhookStore
from gateway.services import Services

MAX_PAGE = 500


class WebhookView(msgspec.Struct, kw_only=True):
    name: str
    url: str
    enabled: bool
    events: list[str]
    retry_for_s: float
    lag: int
    parked: int


class WebhookList(msgspec.Struct, kw_only=True):
    webhooks: list[WebhookView]


class ParkedPage(msgspec.Struct, kw_only=True):
    webhook: str
    parked: list[Parked]
    # Pass as ``after`` for the next page; None: this is the last.
    next: str | None


class Replayed(msgspec.Struct, kw_only=True):
    ok: bool
    webhook: str
    id: str


def _store(services: Services, hook: WebhookConfig) -> WebhookStore:
    return WebhookStore(services.redis, services.config.server.tenant, hook.name, "admin")


def _known(services: Services, name: str) -> WebhookConfig:
    for hook in services.config.core.webhooks:
        if hook.name == name:
            return hook
    raise ApiError(404, "unknown_webhook", f"no webhook {name!r}")


async def get_webhooks(request: web.Request) -> web.Response:
    services = request_services(request)
    views = []
    for hook in services.config.core.webhooks:
        store = _store(services, hook)
        views.append(
            WebhookView(
                name=hook.name,
                url=hook.url,
                enabled=hook.enabled,
                events=hook.events,
                retry_for_s=hook.retry_for_s,
                lag=await store.lag(),
                parked=await store.parked_count(),
            )
        )
    return json_response(WebhookList(webhooks=views))


async def get_parked(request: web.Request) -> web.Response:
    services = request_services(request)
    hook = _known(services, request.match_info["name"])
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise ApiError(400, "bad_request", f"limit runs from 1 to {MAX_PAGE}", "limit")
    limit = int(raw_limit)
    after = request.query.get("after") or None
    found = await _store(services, hook).parked(limit + 1, after)
    page = found[:limit]
    more = len(found) > limit
    return json_response(
        ParkedPage(webhook=hook.name, parked=page, next=page[-1].event.id if more else None)
    )


async def replay(request: web.Request) -> web.Response:
    services = request_services(request)
    hook = _known(services, request.match_info["name"])
    event_id = request.match_info["event_id"]
    if not await _store(services, hook).replay(event_id):
        detail = f"no parked event {event_id!r} for webhook {hook.name!r}"
        raise ApiError(404, "unknown_event", detail)
    return json_response(Replayed(ok=True, webhook=hook.name, id=event_id), status=202)


def add_webhook_routes(api: web.Application) -> None:
    api.router.add_get("/webhooks", get_webhooks)
    api.router.add_get("/webhooks/{name}/parked", get_parked)
    api.router.add_post("/webhooks/{name}/parked/{event_id}/replay", replay)
