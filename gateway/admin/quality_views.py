"""What the admin API and the supervisor socket show of CSAT and QA: a conversation's rating,
the QA queue's entries and the scorecard, as msgspec structs built from the router's records.
A module of its own, importing nothing of the gateway's wiring, so that both protocols can
use the same shapes."""

from __future__ import annotations

from datetime import datetime

import msgspec

from gateway.flows.clock import at_ms
from gateway.quality_config import CSAT_SCALE
from router.aftercare import CsatRecord, QaRecord


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
