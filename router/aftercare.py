"""What follows a close, kept in Redis so that any process finds it: the customer's CSAT
question and answer (满意度), and the QA queue a lead scores from (质检). Each change is one
Lua call (followup.lua, csat.lua, qa_score.lua), which writes the change's lifecycle event
too; reads are plain pipelines. What to ask and what to pick is the gateway's
decision (gateway/flows/aftercare.py): these store it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from router.core import RouterCore
from router.reads import text

RateCode = Literal["ok", "not_asked", "expired", "already"]


class FollowUp(msgspec.Struct, kw_only=True, frozen=True):
    """What the gateway decided for a closed conversation."""

    conversation_id: str
    customer: str  # the customer field (router.keys.customer_field)
    agent: str | None
    queue: str
    channel: str
    closed_ms: int
    ask_until_ms: int  # 0: not asked
    qa_reasons: tuple[str, ...]  # () : not picked for QA
    grade: str | None


class Rated(msgspec.Struct, kw_only=True, frozen=True):
    code: RateCode
    conversation_id: str
    score: int | None = None  # the score stored (for "already": the one stored before)
    agent: str | None = None
    queue: str | None = None
    channel: str | None = None
    picked_for_qa: bool = False


class CsatRecord(msgspec.Struct, kw_only=True, frozen=True):
    asked: bool
    until_ms: int
    score: int | None
    comment: str | None
    answered_ms: int | None
    agent: str | None
    queue: str
    channel: str


class QaRecord(msgspec.Struct, kw_only=True, frozen=True):
    conversation_id: str
    reasons: list[str]
    queue: str
    agent: str | None
    channel: str
    grade: str | None
    closed_ms: int
    picked_ms: int
    csat: int | None
    score: float | None
    items: dict[str, float]
    by: str | None
    note: str | None
    scored_ms: int | None


def _int(value: Any) -> int | None:
    return int(float(text(value))) if value not in (None, b"", "") else None


def csat_record(raw: dict[bytes, bytes]) -> CsatRecord | None:
    if not raw:
        return None
    get = {text(k): text(v) for k, v in raw.items()}.get
    until = _int(get("until_ms")) or 0
    return CsatRecord(
        asked=until > 0,
        until_ms=until,
        score=_int(get("score")),
        comment=get("comment") or None,
        answered_ms=_int(get("answered_ms")),
        agent=get("agent") or None,
        queue=get("queue") or "",
        channel=get("channel") or "",
    )


def qa_record(conversation_id: str, raw: dict[bytes, bytes]) -> QaRecord | None:
    if not raw or b"reasons" not in raw:
        return None
    get = {text(k): text(v) for k, v in raw.items()}.get
    score = get("score")
    return QaRecord(
        conversation_id=conversation_id,
        reasons=[r for r in (get("reasons") or "").split(",") if r],
        queue=get("queue") or "",
        agent=get("agent") or None,
        channel=get("channel") or "",
        grade=get("grade") or None,
        closed_ms=_int(get("closed_ms")) or 0,
        picked_ms=_int(get("picked_ms")) or 0,
        csat=_int(get("csat")),
        score=float(score) if score else None,
        items=json.loads(get("items") or "{}"),
        by=get("by") or None,
        note=get("note") or None,
        scored_ms=_int(get("scored_ms")),
    )


class Aftercare(RouterCore):
    async def follow_up(self, decided: FollowUp, keep_ms: int) -> bool:
        """Store the decision unless the conversation was followed up before (or is open
        again); True when this call stored it, so that only one caller asks the customer."""
        k = self.keys
        reply = await self._scripts.run(
            "followup",
            rating=k.rating(decided.conversation_id),
            ask=k.csat_ask(decided.customer),
            qa=k.qa(decided.conversation_id),
            conversation=decided.conversation_id,
            customer=decided.customer,
            agent=decided.agent or "",
            queue=decided.queue,
            channel=decided.channel,
            closed_ms=decided.closed_ms,
            ask_until_ms=decided.ask_until_ms,
            qa_reasons=",".join(decided.qa_reasons),
            grade=decided.grade or "",
            keep_ms=keep_ms,
        )
        return text(reply[0]) == "ok"

    async def asked_last(self, customer: str) -> str | None:
        """The conversation the customer was last asked to rate, while the window is open."""
        return text(await self.redis.get(self.keys.csat_ask(customer))) or None

    async def rate(
        self,
        conversation_id: str,
        customer: str,
        score: int,
        comment: str | None,
        now_ms: int,
        *,
        reply: bool,
        low_at_most: int,
        keep_ms: int,
    ) -> Rated:
        """Store the customer's rating. ``reply``: a digit written as a message, which
        counts only for the conversation asked about last, while none is open."""
        k = self.keys
        raw = await self._scripts.run(
            "csat",
            rating=k.rating(conversation_id),
            ask=k.csat_ask(customer),
            qa=k.qa(conversation_id),
            conversation=conversation_id,
            customer=customer,
            score=score,
            comment=comment or "",
            now_ms=now_ms,
            reply=1 if reply else 0,
            low_at_most=low_at_most,
            keep_ms=keep_ms,
        )
        code = text(raw[0])
        if code == "ok":
            return Rated(
                code="ok",
                conversation_id=conversation_id,
                score=score,
                agent=text(raw[1]) or None,
                queue=text(raw[2]) or None,
                channel=text(raw[3]) or None,
                picked_for_qa=bool(int(raw[4])),
            )
        if code == "already":
            return Rated(code="already", conversation_id=conversation_id, score=_int(raw[1]))
        return Rated(code=code, conversation_id=conversation_id)  # type: ignore[arg-type]

    async def csat_of(self, conversation_id: str) -> CsatRecord | None:
        return csat_record(await self.redis.hgetall(self.keys.rating(conversation_id)))

    async def followed_up(self, ids: Sequence[str]) -> list[bool]:
        """Whether each conversation's close was followed up."""
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in ids:
                pipe.exists(self.keys.rating(conv))
            return [bool(found) for found in await pipe.execute()]

    async def closed_between(
        self, after_ms: int, until_ms: int, limit: int
    ) -> list[tuple[str, int]]:
        """Conversations closed in (after_ms, until_ms], oldest first, with their close ms."""
        raw = await self.redis.zrangebyscore(
            self.keys.closed, f"({after_ms}", until_ms, start=0, num=limit, withscores=True
        )
        return [(text(conv), int(score)) for conv, score in raw]

    async def qa_page(self, scored: bool, start_ms: int, limit: int) -> list[tuple[str, int]]:
        """QA conversations picked (or scored) at or after start_ms, oldest first."""
        key = self.keys.qa_scored if scored else self.keys.qa_pending
        raw = await self.redis.zrangebyscore(
            key, start_ms, "+inf", start=0, num=limit, withscores=True
        )
        return [(text(conv), int(score)) for conv, score in raw]

    async def qa_records(self, ids: Sequence[str]) -> list[QaRecord]:
        """The QA records of those of ids that have one, in order."""
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in ids:
                pipe.hgetall(self.keys.qa(conv))
            raw = await pipe.execute()
        found = [qa_record(conv, r) for conv, r in zip(ids, raw, strict=True)]
        return [r for r in found if r is not None]

    async def qa_score(
        self,
        conversation_id: str,
        score: float,
        items: dict[str, float],
        by: str,
        note: str | None,
        now_ms: int,
    ) -> bool:
        """Store a lead's score; False when the conversation is not in the QA queue."""
        reply = await self._scripts.run(
            "qa_score",
            qa=self.keys.qa(conversation_id),
            conversation=conversation_id,
            score=repr(score),
            items=json.dumps(items, ensure_ascii=False),
            by=by,
            note=note or "",
            now_ms=now_ms,
        )
        return text(reply[0]) == "ok"

    async def trim_aftercare(self, before_ms: int) -> None:
        """Drop QA list entries older than the records' retention (the records expire)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.qa_pending, "-inf", before_ms)
            pipe.zremrangebyscore(self.keys.qa_scored, "-inf", before_ms)
            await pipe.execute()
