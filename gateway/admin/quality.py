"""/api/qa: the QA queue (质检) a team lead works from, and a conversation's CSAT as
GET /api/conversations/{id} shows it. A lead signs in with their own supervisor token and
sees and scores only the conversations of the queues they lead; the admin token sees all.
A score is one number per scorecard item (``[[qa.scorecard]]``), 0 to 100; the
conversation's QA score is their weighted mean, worked out here and stored by one Lua call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from gateway.admin.bodies import Body, decode_body
from gateway.admin.errors import ApiError, json_response
from gateway.admin.keys import request_services
from gateway.config import SupervisorConfig
from gateway.flows.clock import at_ms
from gateway.quality_config import CSAT_SCALE, QA_ITEM_MAX, ScorecardItem
from gateway.services import Services
from gateway.supervisors.scope import scope_of
from router.aftercare import CsatRecord, QaRecord

# Who signed in to a QA route: a team lead, or None for the admin token.
LEAD = web.RequestKey("qa_lead", SupervisorConfig | None)  # type: ignore[arg-type]
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class CsatView(msgspec.Struct, kw_only=True):
    asked: bool
    scale: int
    window_ends_at: datetime | None
    score: int | None
    comment: str | None
    answered_at: datetime | None
    agent: str | None


class ScorecardItemView(msgspec.Struct, kw_only=True):
    name: str
    weight: float
    description: str | None


class QaView(msgspec.Struct, kw_only=True):
    conversation_id: str
    reasons: list[str]  # sample, complaint, low_csat
    queue: str
    agent: str | None
    channel: str
    grade: str | None
    closed_at: datetime
    picked_at: datetime
    csat: int | None
    score: float | None
    items: dict[str, float]
    scored_by: str | None
    note: str | None
    scored_at: datetime | None


class QaListResponse(msgspec.Struct, kw_only=True):
    status: Literal["pending", "scored"]
    scorecard: list[ScorecardItemView]
    conversations: list[QaView]
    next_cursor: str | None


class QaScoreBody(Body):
    # Checked item by item (weighted_mean), so that a refusal names the item.
    items: dict[str, Any]
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


def csat_view(record: CsatRecord | None) -> CsatView:
    if record is None:
        return CsatView(
            asked=False, scale=CSAT_SCALE, window_ends_at=None, score=None, comment=None,
            answered_at=None, agent=None,
        )  # fmt: skip
    return CsatView(
        asked=record.asked,
        scale=CSAT_SCALE,
        window_ends_at=at_ms(record.until_ms) if record.asked else None,
        score=record.score,
        comment=record.comment,
        answered_at=None if record.answered_ms is None else at_ms(record.answered_ms),
        agent=record.agent,
    )


def qa_view(record: QaRecord) -> QaView:
    return QaView(
        conversation_id=record.conversation_id,
        reasons=record.reasons,
        queue=record.queue,
        agent=record.agent,
        channel=record.channel,
        grade=record.grade,
        closed_at=at_ms(record.closed_ms),
        picked_at=at_ms(record.picked_ms),
        csat=record.csat,
        score=record.score,
        items=record.items,
        scored_by=record.by,
        note=record.note,
        scored_at=None if record.scored_ms is None else at_ms(record.scored_ms),
    )


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


def _queues_seen(services: Services, lead: SupervisorConfig | None) -> set[str]:
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


async def get_qa(request: web.Request) -> web.Response:
    """The QA queue: pending (oldest first) or scored, of the queues the caller sees."""
    services = request_services(request)
    lead = request[LEAD]
    status = request.query.get("status", "pending")
    if status not in ("pending", "scored"):
        raise ApiError(400, "bad_request", "status is pending or scored", "status")
    seen = _queues_seen(services, lead)
    wanted = request.query.get("queue")
    if wanted is not None:
        if wanted not in seen:
            raise ApiError(404, "unknown_queue", f"no queue {wanted!r} that you lead", "queue")
        seen = {wanted}
    limit = _limit(request)
    start_ms, after_conv = _cursor(request)
    router = services.router
    found: list[QaView] = []
    next_cursor: str | None = None
    # Pages of the tenant's QA list, filtered to the caller's queues, until the page is full.
    while next_cursor is None:
        batch = await router.qa_page(status == "scored", start_ms, MAX_LIMIT + 1)
        batch = [(c, ms) for c, ms in batch if (ms, c) > (start_ms, after_conv)]
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
            if not batch:
                break
            start_ms, after_conv = batch[-1][1], batch[-1][0]
    scorecard = [
        ScorecardItemView(name=i.name, weight=i.weight, description=i.description)
        for i in services.config.core.qa.scorecard
    ]
    return json_response(
        QaListResponse(
            status=status,  # type: ignore[arg-type]
            scorecard=scorecard,
            conversations=found,
            next_cursor=next_cursor,
        )
    )


async def _qa_record(services: Services, lead: SupervisorConfig | None, conv: str) -> QaRecord:
    [record] = await services.router.qa_records([conv]) or [None]
    if record is None or record.queue not in _queues_seen(services, lead):
        raise ApiError(404, "unknown_conversation", f"no conversation {conv!r} in your QA queue")
    return record


async def get_qa_item(request: web.Request) -> web.Response:
    services = request_services(request)
    record = await _qa_record(services, request[LEAD], request.match_info["conversation_id"])
    return json_response(qa_view(record))


async def score_qa(request: web.Request) -> web.Response:
    services = request_services(request)
    lead = request[LEAD]
    conv = request.match_info["conversation_id"]
    body = await decode_body(request, QaScoreBody)
    await _qa_record(services, lead, conv)
    score = weighted_mean(services.config.core.qa.scorecard, body.items)
    by = lead.id if lead is not None else "admin"
    now = services.switchboard.clock()
    if not await services.router.qa_score(conv, score, body.items, by, body.note, now):
        raise ApiError(404, "unknown_conversation", f"no conversation {conv!r} in your QA queue")
    [record] = await services.router.qa_records([conv])
    return json_response(qa_view(record))
