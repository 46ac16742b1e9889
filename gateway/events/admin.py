"""/api/webhooks: each configured webhook with its lag and dead letters, the dead letters
themselves (a page at a time), and the replay of one. Dead letters live in Redis, so any
process answers and any process's delivery loop sends a replay."""

from __future__ import annotations

import re

import msgspec
from aiohttp import web

from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from gateway.events.config import WebhookConfig
from gateway.events.store import Parked, WebhookStore
from gateway.services import Services

MAX_PAGE = 500
_EVENT_ID = re.compile(r"\d+-\d+\Z")
_CURSOR = re.compile(r"(?P<ms>\d{1,15}):(?P<id>\d+-\d+)\Z")


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
    # Pass as ``after`` for the next page (``<parked_at>:<id>`` of this page's last); None:
    # this is the last.
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
    refuse_unknown_parameters(request.query)
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
    refuse_unknown_parameters(request.query, ("limit", "after"))
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
        raise ApiError(400, "bad_request", f"limit runs from 1 to {MAX_PAGE}", "limit")
    limit = int(raw_limit)
    store = _store(services, hook)
    after = await _after(store, request.query.get("after") or None)
    found = await store.parked(limit + 1, after)
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    cursor = f"{last.parked_at}:{last.event.id}" if last is not None else None
    return json_response(ParkedPage(webhook=hook.name, parked=page, next=cursor))


async def _after(store: WebhookStore, raw: str | None) -> tuple[int, str] | None:
    """The page's start: a ``next`` as the page before gave it (``<parked_at>:<event id>``),
    or the id of an event still parked (what ``next`` was before it carried the time)."""
    if raw is None:
        return None
    if match := _CURSOR.match(raw):
        return int(match["ms"]), match["id"]
    if _EVENT_ID.match(raw) and (parked_at := await store.parked_at(raw)) is not None:
        return parked_at, raw
    detail = "after: pass the next of the page before as it came"
    raise ApiError(400, "bad_request", detail, "after")


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
