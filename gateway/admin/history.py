"""/api/conversations (the list and search of kept conversations) and
/api/conversations/{id}/transcript (JSON, CSV or plain text). Parameters are checked here and
a bad one is a 400 naming it; the reading is router/history.py's."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from aiohttp import web

from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from router.history import ID_PATTERN, ConversationHistory, HistoryFilter, Transcript

MAX_LIMIT = 200
MAX_Q = 200
PARAMETERS = (
    "status", "queue", "agent", "channel", "customer", "since", "until", "q", "limit", "cursor",
)  # fmt: skip
STATUSES = ("queued", "offered", "assigned", "closed", "open")
FORMATS = ("json", "csv", "text")
CSV_COLUMNS = ("sent_at", "direction", "author", "text", "attachments", "kind", "message_id")


def bad_parameter(name: str, problem: str) -> ApiError:
    return ApiError(400, "bad_request", f"{name}: {problem}", name)


def time_ms(name: str, value: str) -> int:
    """Unix ms, or an ISO 8601 time (without a zone: UTC)."""
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise bad_parameter(name, "an ISO 8601 time (2026-01-31T08:00:00Z) or unix ms") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_filter(query: web.BaseRequest | dict[str, str]) -> HistoryFilter:
    params = dict(query.query if isinstance(query, web.BaseRequest) else query)
    refuse_unknown_parameters(params, PARAMETERS)
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise bad_parameter("status", f"one of {', '.join(STATUSES)}")
    raw_limit = params.get("limit", "50")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise bad_parameter("limit", f"a whole number from 1 to {MAX_LIMIT}")
    cursor = params.get("cursor") or None
    if cursor is not None and not ID_PATTERN.match(cursor):
        raise bad_parameter("cursor", "pass the next_cursor of the previous page as it came")
    q = params.get("q")
    if q is not None and not 1 <= len(q.strip()) <= MAX_Q:
        raise bad_parameter("q", f"1 to {MAX_Q} characters")
    since = time_ms("since", params["since"]) if params.get("since") else None
    until = time_ms("until", params["until"]) if params.get("until") else None
    if since is not None and until is not None and until <= since:
        raise bad_parameter("until", "must be after since")
    return HistoryFilter(
        status=status,  # type: ignore[arg-type]
        queue=params.get("queue") or None,
        agent=params.get("agent") or None,
        channel=params.get("channel") or None,
        customer=params.get("customer") or None,
        since_ms=since,
        until_ms=until,
        q=q.strip() if q else None,
        limit=int(raw_limit),
        cursor=cursor,
    )


def _history(request: web.Request) -> ConversationHistory:
    router = request_services(request).router
    return ConversationHistory(router.redis, router.keys)


async def list_conversations(request: web.Request) -> web.Response:
    services = request_services(request)
    page = await _history(request).page(
        parse_filter(request), services.config.core.history.max_scan
    )
    return json_response(page)


async def transcript(request: web.Request) -> web.Response:
    refuse_unknown_parameters(request.query, ("format",))
    conversation_id = request.match_info["conversation_id"]
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise bad_parameter("format", f"one of {', '.join(FORMATS)}")
    found = await _history(request).transcript(conversation_id)
    if found is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {conversation_id!r}")
    disposition = {"Content-Disposition": f'inline; filename="{conversation_id}.{_ext(fmt)}"'}
    if fmt == "json":
        return json_response(found, headers=disposition)
    if fmt == "csv":
        return web.Response(
            text="\ufeff" + transcript_csv(found),
            content_type="text/csv",
            charset="utf-8",
            headers=disposition,
        )
    return web.Response(
        text=transcript_text(found), content_type="text/plain", charset="utf-8", headers=disposition
    )


def _ext(fmt: str) -> str:
    return "txt" if fmt == "text" else fmt


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _author(found: Transcript, direction: str, author: str | None) -> str:
    if direction == "in":
        customer = found.conversation.customer
        return customer.name or customer.id
    return author or found.conversation.agent or "agent"


# A cell starting with one of these is a formula to a spreadsheet program (=HYPERLINK can
# send the sheet's cells away): customers write the text, names and file names, so such a
# cell goes out behind a ', read as text, as OWASP advises against CSV injection.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def transcript_csv(found: Transcript) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for m in found.messages:
        writer.writerow(
            (
                _when(m.sent_at),
                m.direction,
                _cell(_author(found, m.direction, m.author)),
                _cell(m.text),
                _cell(";".join(a.name for a in m.attachments)),
                m.kind,
                m.id,
            )
        )
    return out.getvalue()


def transcript_text(found: Transcript) -> str:
    c = found.conversation
    lines = [
        f"Conversation {c.id} ({c.channel}, queue {c.queue}), {c.state}",
        f"Customer: {_one_line(c.customer.name or c.customer.id)} ({c.customer.id})",
        f"Agent: {c.agent or '-'}",
        f"Opened: {_when(c.created_at)}"
        + (f", closed: {_when(c.closed_at)}" if c.closed_at else ""),
        "",
    ]
    for m in found.messages:
        files = f" [{', '.join(a.name for a in m.attachments)}]" if m.attachments else ""
        author = _one_line(_author(found, m.direction, m.author))
        lines.append(f"[{_when(m.sent_at)}] {author}: {_indented(m.text)}{files}")
    return "\n".join(lines) + "\n"


def _indented(text: str) -> str:
    """A message's lines after its first, indented: only a message's first line starts with
    "[", so that a customer cannot write a line that reads as the agent's."""
    return "\n  ".join(text.splitlines())


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())
