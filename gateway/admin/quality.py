"""/api/qa: the QA queue (质检) a team lead works from, and a conversation's CSAT as
GET /api/conversations/{id} shows it. A lead signs in with their own supervisor token and
sees and scores only the conversations of the queues they lead; the admin token sees all.
A score is one number per scorecard item (``[[qa.scorecard]]``), 0 to 100; the
conversation's QA score is their weighted mean, worked out here and stored by one Lua call."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from gateway.admin.bodies import Body, decode_body
from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from gateway.admin.quality_views import QaView, ScorecardItemView, qa_view
from gateway.config import SupervisorConfig
from gateway.quality_config import QA_ITEM_MAX, ScorecardItem
from gateway.services import Services
from gateway.supervisors.scope import scope_of
from router.aftercare import QaRecord

# Who signed in to a QA route: a team lead, or None for the admin token.
LEAD = web.RequestKey("qa_lead", SupervisorConfig | None)  # type: ignore[arg-type]
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class QaListResponse(msgspec.Struct, kw_only=True):
    status: Literal["pending", "scored"]
    scorecard: list[ScorecardItemView]
    conversations: list[QaView]
    next_cursor: str | None


class QaScoreBody(Body):
    # Checked item by item (weighted_mean), so that a refusal names the item.
    items: dict[str, Any]
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def weighted_mean(scorecard: list[ScorecardItem], items: dict[str, Any]) -> float:
    """The QA score: every item scored 0 to 100, each counting by its weight."""
    known = {item.name for item in scorecard}
    for name, value in items.items():
        if name not in known:
            raise ApiError(400, "bad_request", f"no scorecard item {name!r}", f"items.{name}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(400, "bad_request", "a score is a number", f"items.{name}")
        if not 0 <= value <= QA_ITEM_MAX:
            detail = f"a score runs from 0 to {QA_ITEM_MAX}"
            raise ApiError(400, "bad_request", detail, f"items.{name}")
    for item in scorecard:
        if item.name not in items:
            raise ApiError(400, "bad_request", "score every scorecard item", f"items.{item.name}")
    total = sum(item.weight for item in scorecard)
    return round(sum(items[item.name] * item.weight for item in scorecard) / total, 2)


def queues_seen(services: Services, lead: SupervisorConfig | None) -> set[str]:
    if lead is None:
        return {q.name for q in services.config.queues}
    return set(scope_of(services.config, lead).queues)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "bad_request", f"limit runs from 1 to {MAX_LIMIT}", "limit")
    return int(raw)


def _cursor(request: web.Request) -> tuple[int, str]:
    """Where the page starts: after (ms, conversation id) of the previous page's last."""
    raw = request.query.get("cursor")
    if raw is None:
        return 0, ""
    ms, _, conv = raw.partition(":")
    if not ms.isdigit() or not conv:
        raise ApiError(400, "bad_request", "use the next_cursor of the previous page", "cursor")
    return int(ms), conv


def scorecard_views(services: Services) -> list[ScorecardItemView]:
    return [
        ScorecardItemView(name=i.name, weight=i.weight, description=i.description)
        for i in services.config.core.qa.scorecard
    ]


async def list_qa(
    services: Services, seen: set[str], scored: bool, limit: int, after: tuple[int, str]
) -> tuple[list[QaView], str | None]:
    """A page of the QA list of the queues in ``seen``, from after (ms, conversation id), and
    the cursor of the next page (None: the last)."""
    router = services.router
    start_ms, after_conv = after
    found: list[QaView] = []
    next_cursor: str | None = None
    # Pages of the tenant's QA list, filtered to the caller's queues, until the page is full.
    while next_cursor is None:
        batch = await router.qa_page(scored, start_ms, MAX_LIMIT + 1)
        batch = [(c, ms) for c, ms in batch if (ms, c) > (start_ms, after_conv)]
        if not batch:
            break
        records = {r.conversation_id: r for r in await router.qa_records([c for c, _ in batch])}
        for conv, ms in batch:
            record = records.get(conv)
            if record is None or record.queue not in seen:
                continue
            if len(found) == limit:
                next_cursor = f"{start_ms}:{after_conv}"
                break
            found.append(qa_view(record))
            start_ms, after_conv = ms, conv
        else:
            start_ms, after_conv = batch[-1][1], batch[-1][0]
    return found, next_cursor


async def qa_record_seen(services: Services, seen: set[str], conv: str) -> QaRecord:
    [record] = await services.router.qa_records([conv]) or [None]
    if record is None or record.queue not in seen:
        raise ApiError(
            404,
            "unknown_conversation",
            f"no conversation {conv!r} in your QA queue",
            "conversation_id",
        )
    return record


async def score(
    services: Services, seen: set[str], conv: str, items: dict[str, Any], note: str | None, by: str
) -> QaView:
    """Store a lead's score of a conversation of their QA queue; ApiError naming the item."""
    await qa_record_seen(services, seen, conv)
    mean = weighted_mean(services.config.core.qa.scorecard, items)
    now = services.switchboard.clock()
    if not await services.router.qa_score(conv, mean, items, by, note, now):
        raise ApiError(
            404,
            "unknown_conversation",
            f"no conversation {conv!r} in your QA queue",
            "conversation_id",
        )
    record = await qa_record_seen(services, seen, conv)
    services.metrics.qa_scored.labels(record.queue).inc()
    return qa_view(record)


async def get_qa(request: web.Request) -> web.Response:
    """The QA queue: pending (oldest first) or scored, of the queues the caller sees."""
    services = request_services(request)
    refuse_unknown_parameters(request.query, ("status", "queue", "limit", "cursor"))
    status = request.query.get("status", "pending")
    if status not in ("pending", "scored"):
        raise ApiError(400, "bad_request", "status is pending or scored", "status")
    seen = queues_seen(services, request[LEAD])
    wanted = request.query.get("queue")
    if wanted is not None:
        if wanted not in seen:
            raise ApiError(404, "unknown_queue", f"no queue {wanted!r} that you lead", "queue")
        seen = {wanted}
    found, next_cursor = await list_qa(
        services, seen, status == "scored", _limit(request), _cursor(request)
    )
    return json_response(
        QaListResponse(
            status=status,  # type: ignore[arg-type]
            scorecard=scorecard_views(services),
            conversations=found,
            next_cursor=next_cursor,
        )
    )


async def get_qa_item(request: web.Request) -> web.Response:
    refuse_unknown_parameters(request.query)
    services = request_services(request)
    seen = queues_seen(services, request[LEAD])
    record = await qa_record_seen(services, seen, request.match_info["conversation_id"])
    return json_response(qa_view(record))


async def score_qa(request: web.Request) -> web.Response:
    services = request_services(request)
    lead = request[LEAD]
    body = await decode_body(request, QaScoreBody)
    by = lead.id if lead is not None else "admin"
    conv = request.match_info["conversation_id"]
    view = await score(services, queues_seen(services, lead), conv, body.items, body.note, by)
    return json_response(view)
