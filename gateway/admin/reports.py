"""/api/reports/agents and /api/reports/queues: the KPI reports (docs/reports.md#kpis), as
JSON or CSV. Parameters are checked here and a bad one is a 400 naming it; the figures are
router/reports.py's, so both formats carry the same numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.history import bad_parameter, time_ms
from gateway.admin.keys import request_services
from router.reports import Facts, KpiRow, ReportReader, TooMany, agent_rows, queue_rows

DAY_MS = 86_400_000
MAX_PERIOD_MS = 92 * DAY_MS
PARAMETERS = ("since", "until", "queue", "agent", "format")
FORMATS = ("json", "csv")
CSV_COLUMNS = (
    "name", "closed", "handled",
    "first_response_count", "first_response_median_s", "first_response_p90_s",
    "handling_count", "handling_median_s", "handling_p90_s",
    "transfers", "transferred_away", "complaints_total", "complaints",
    "sla_answered", "sla_met", "sla_met_share",
    "csat_asked", "csat_rated", "csat_average", "csat_response_rate",
    "qa_scored", "qa_average",
)  # fmt: skip


class Period(msgspec.Struct, kw_only=True):
    since: datetime
    until: datetime  # excluded


class Filters(msgspec.Struct, kw_only=True):
    queue: str | None
    agent: str | None


class Report(msgspec.Struct, kw_only=True):
    kind: str  # "agents" or "queues"
    period: Period
    filters: Filters
    rows: list[KpiRow]


class Asked(msgspec.Struct, kw_only=True, frozen=True):
    since_ms: int
    until_ms: int
    queue: str | None
    agent: str | None
    csv: bool


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def parse_report_query(
    request: web.Request, now_ms: int, queues: Iterable[str], agents: Iterable[str]
) -> Asked:
    params = dict(request.query)
    refuse_unknown_parameters(params, PARAMETERS)
    fmt = params.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise bad_parameter("format", f"one of {', '.join(FORMATS)}")
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("Accept", ""))
    until = time_ms("until", params["until"]) if params.get("until") else now_ms
    since = time_ms("since", params["since"]) if params.get("since") else until - DAY_MS
    if until <= since:
        raise bad_parameter("until", "must be after since")
    if until - since > MAX_PERIOD_MS:
        raise bad_parameter("since", f"a period of at most {MAX_PERIOD_MS // DAY_MS} days")
    return Asked(
        since_ms=since,
        until_ms=until,
        queue=_known("queue", params.get("queue") or None, queues),
        agent=_known("agent", params.get("agent") or None, agents),
        csv=wants_csv,
    )


def _known(name: str, value: str | None, known: Iterable[str]) -> str | None:
    names = sorted(known)
    if value is not None and value not in names:
        raise bad_parameter(name, f"no {name} {value!r}; the {name}s are {', '.join(names)}")
    return value


RowsOf = Callable[[Sequence[Facts], Iterable[str]], list[KpiRow]]


async def _report(request: web.Request, kind: str, rows_of: RowsOf) -> web.Response:
    services = request_services(request)
    router = services.router
    agents = [a.id for a in services.config.agents]
    asked = parse_report_query(request, services.switchboard.clock(), router.queues, agents)
    try:
        facts = await ReportReader(router.redis, router.keys, router.queues).facts(
            asked.since_ms, asked.until_ms
        )
    except TooMany:
        detail = "since: too many conversations in the period; ask for a shorter one"
        raise ApiError(400, "bad_request", detail, "since") from None
    # An agent's row is made of their conversations anyway, and their transfers away are
    # counted over everyone's: only the queues' report narrows the conversations by agent.
    by_agent = asked.agent if kind == "queues" else None
    facts = [
        f
        for f in facts
        if (asked.queue is None or f.queue == asked.queue)
        and (by_agent is None or f.agent == by_agent)
    ]
    named = agents if kind == "agents" else list(router.queues)
    rows = [
        r
        for r in rows_of(facts, named)
        if (kind != "agents" or asked.agent is None or r.name == asked.agent)
        and (kind != "queues" or asked.queue is None or r.name == asked.queue)
    ]
    report = Report(
        kind=kind,
        period=Period(since=_utc(asked.since_ms), until=_utc(asked.until_ms)),
        filters=Filters(queue=asked.queue, agent=asked.agent),
        rows=rows,
    )
    if not asked.csv:
        return json_response(report)
    name = f"{kind}-{_utc(asked.since_ms):%Y%m%dT%H%M%SZ}.csv"
    return web.Response(
        text="\ufeff" + report_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


def _cell(value: object) -> object:
    return "" if value is None else value


def report_csv(rows: Sequence[KpiRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        fr, ht = r.first_response, r.handling
        grades = ";".join(f"{grade}:{n}" for grade, n in r.complaints.items())
        values = (
            r.name, r.closed, r.handled,
            fr.count, fr.median_s, fr.p90_s, ht.count, ht.median_s, ht.p90_s,
            r.transfers, r.transferred_away, r.complaints_total, grades,
            r.sla.answered, r.sla.met, r.sla.met_share,
            r.csat.asked, r.csat.rated, r.csat.average, r.csat.response_rate,
            r.qa.scored, r.qa.average,
        )  # fmt: skip
        writer.writerow([_cell(v) for v in values])
    return out.getvalue()


async def agents_report(request: web.Request) -> web.Response:
    return await _report(request, "agents", agent_rows)


async def queues_report(request: web.Request) -> web.Response:
    return await _report(request, "queues", queue_rows)
