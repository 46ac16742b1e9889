"""KPI reports per agent and per queue over a period (docs/reports.md#kpis): what a team lead
reads about how conversations went, from what routing already keeps and nothing else.

A report is over the conversations closed in the period (the closed zset, by close time): each
one's route carries what the scripts recorded as it happened (first assignment, first
response, transfers, the agent holding it at the close; router/route.py), and its CSAT and
QA records (router/aftercare.py) what followed. Reading is plain pipelines, a batch at a time;
the figures are computed here in Python, by one definition per figure, so that the JSON and
the CSV of the admin API (gateway/admin/reports.py) say the same. Nothing here changes state."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec

from router.aftercare import csat_record, qa_record
from router.config import QueueConfig
from router.keys import RouterKeys
from router.reads import text
from router.route import decode_route

BATCH = 200
# A report reads every conversation of its period; more than this is refused (ask for a
# shorter period) rather than read for minutes.
MAX_CONVERSATIONS = 100_000


class TooMany(Exception):
    """The period holds more than MAX_CONVERSATIONS closed conversations."""


class Facts(msgspec.Struct, kw_only=True, frozen=True):
    """What a report needs of one closed conversation, in ms."""

    id: str
    queue: str
    agent: str | None  # holding it when it closed
    closed_ms: int
    enqueued_ms: int
    first_assigned_ms: int | None
    first_response_ms: int | None
    transfers_from: tuple[str, ...]
    grade: str | None
    sla_s: float | None  # its own (a grade's) or its queue's; None or 0: no SLA
    leave_message: bool
    csat_asked: bool
    csat_score: int | None
    qa_score: float | None


class Spread(msgspec.Struct, kw_only=True):
    count: int
    median_s: float | None
    p90_s: float | None


class Sla(msgspec.Struct, kw_only=True):
    answered: int  # first assigned, with an SLA
    met: int
    met_share: float | None


class Csat(msgspec.Struct, kw_only=True):
    asked: int
    rated: int
    average: float | None
    response_rate: float | None


class Qa(msgspec.Struct, kw_only=True):
    scored: int
    average: float | None


class KpiRow(msgspec.Struct, kw_only=True):
    name: str  # the agent's id or the queue's name
    closed: int
    handled: int
    first_response: Spread
    handling: Spread
    transfers: int
    # Agents only: the transfers this agent made (of any conversation closed in the period).
    transferred_away: int | None
    complaints: dict[str, int]
    complaints_total: int
    sla: Sla
    csat: Csat
    qa: Qa


def _seconds(ms: float) -> float:
    return round(ms / 1000, 3)


def median(values: Sequence[int]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count."""
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[int]) -> float | None:
    """Nearest rank: the value at rank ceil(0.9 n) of the values in ascending order."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.ceil(0.9 * len(ordered)) - 1])


def spread(values_ms: Sequence[int]) -> Spread:
    mid, high = median(values_ms), p90(values_ms)
    return Spread(
        count=len(values_ms),
        median_s=None if mid is None else _seconds(mid),
        p90_s=None if high is None else _seconds(high),
    )


def _share(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def sla_met(f: Facts) -> bool | None:
    """Whether its first assignment came within its SLA of the enqueue; None: not counted (no
    SLA, never assigned, or a left message, which nobody waits on)."""
    if not f.sla_s or f.first_assigned_ms is None or f.leave_message:
        return None
    return f.first_assigned_ms - f.enqueued_ms <= f.sla_s * 1000


def kpi_row(name: str, facts: Sequence[Facts], transferred_away: int | None = None) -> KpiRow:
    handled = [f for f in facts if f.agent is not None]
    complaints: dict[str, int] = {}
    for f in facts:
        if f.grade:
            complaints[f.grade] = complaints.get(f.grade, 0) + 1
    slas = [m for m in map(sla_met, facts) if m is not None]
    asked = [f for f in facts if f.csat_asked]
    scores = [f.csat_score for f in facts if f.csat_score is not None]
    qa = [f.qa_score for f in facts if f.qa_score is not None]
    return KpiRow(
        name=name,
        closed=len(facts),
        handled=len(handled),
        first_response=spread(
            [f.first_response_ms - f.enqueued_ms for f in handled if f.first_response_ms]
        ),
        handling=spread(
            [f.closed_ms - f.first_assigned_ms for f in handled if f.first_assigned_ms]
        ),
        transfers=sum(len(f.transfers_from) for f in facts),
        transferred_away=transferred_away,
        complaints=dict(sorted(complaints.items())),
        complaints_total=sum(complaints.values()),
        sla=Sla(answered=len(slas), met=sum(slas), met_share=_share(sum(slas), len(slas))),
        csat=Csat(
            asked=len(asked),
            rated=len(scores),
            average=round(statistics.fmean(scores), 2) if scores else None,
            response_rate=_share(len(scores), len(asked)),
        ),
        qa=Qa(scored=len(qa), average=round(statistics.fmean(qa), 2) if qa else None),
    )


def _rows(
    names: Iterable[str], facts: Sequence[Facts], key: Callable[[Facts], str | None]
) -> dict[str, list[Facts]]:
    """The facts of each name (every name listed, even with none), sorted by name."""
    grouped: dict[str, list[Facts]] = {name: [] for name in names}
    for f in facts:
        name = key(f)
        if name is not None:
            grouped.setdefault(name, []).append(f)
    return dict(sorted(grouped.items()))


def agent_rows(facts: Sequence[Facts], agents: Iterable[str]) -> list[KpiRow]:
    """A row per agent: the conversations they held when they closed."""
    away: dict[str, int] = {}
    for f in facts:
        for who in f.transfers_from:
            away[who] = away.get(who, 0) + 1
    grouped = _rows(agents, facts, lambda f: f.agent)
    return [kpi_row(name, rows, away.get(name, 0)) for name, rows in grouped.items()]


def queue_rows(facts: Sequence[Facts], queues: Iterable[str]) -> list[KpiRow]:
    """A row per queue: the conversations that were in it when they closed."""
    return [kpi_row(name, rows) for name, rows in _rows(queues, facts, lambda f: f.queue).items()]


class ReportReader:
    def __init__(self, redis: Any, keys: RouterKeys, queues: Mapping[str, QueueConfig]) -> None:
        self.redis, self.keys, self.queues = redis, keys, queues

    async def facts(self, since_ms: int, until_ms: int) -> list[Facts]:
        """Every conversation closed in [since_ms, until_ms), oldest close first."""
        closed = await self.redis.zrangebyscore(
            self.keys.closed,
            since_ms,
            f"({until_ms}",
            start=0,
            num=MAX_CONVERSATIONS + 1,
            withscores=True,
        )
        if len(closed) > MAX_CONVERSATIONS:
            raise TooMany
        found: list[Facts] = []
        for start in range(0, len(closed), BATCH):
            found += await self._read([(text(c), int(s)) for c, s in closed[start : start + BATCH]])
        return found

    async def _read(self, batch: Sequence[tuple[str, int]]) -> list[Facts]:
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv, _ in batch:
                pipe.hget(k.state, conv)
                pipe.hget(k.route, conv)
                pipe.hgetall(k.rating(conv))
                pipe.hgetall(k.qa(conv))
            raw = await pipe.execute()
        out = []
        for i, (conv, closed_ms) in enumerate(batch):
            state, route_raw, rating, qa = raw[i * 4 : i * 4 + 4]
            if text(state) != "closed" or not route_raw:
                continue  # reopened since, or purged between the two reads
            r = decode_route(route_raw)
            csat = csat_record(rating)
            scored = qa_record(conv, qa)
            queue = self.queues.get(r.queue)
            out.append(
                Facts(
                    id=conv,
                    queue=r.queue,
                    agent=r.closed_holder,
                    closed_ms=closed_ms,
                    enqueued_ms=r.enqueued_ms,
                    first_assigned_ms=r.first_assigned_ms,
                    first_response_ms=r.first_response_ms,
                    transfers_from=tuple(r.transfers_from),
                    grade=r.grade,
                    sla_s=r.sla_s if r.sla_s is not None else queue.sla_s if queue else None,
                    leave_message=bool(r.leave_message),
                    csat_asked=bool(csat and csat.asked),
                    csat_score=csat.score if csat else None,
                    qa_score=scored.score if scored else None,
                )
            )
        return out
