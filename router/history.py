"""Reading the conversations Redis keeps (open ones, and closed ones until ``[routing]
closed_retention_s`` purges them), for the admin API's list, search and transcripts.

There is no index beside the routing state: a page reads the ids of every kept conversation
(HSCAN of the state hash), newest first (ids sort by creation time, router/ids.py, so
``since``/``until`` need no read), then reads and filters the candidates a batch at a time,
at most ``max_scan`` of them per page. Text search reads every message of each candidate and
matches a case-folded substring, which works for Chinese as for English. Costs are in
docs/admin-api.md. Nothing here changes state."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from adapters.model import ConversationState, Customer, Message
from router.keys import RouterKeys
from router.reads import decode_message, decode_meta, text
from router.route import decode_route

BATCH = 100
SNIPPET_CHARS = 120
ID_PATTERN = re.compile(r"c[0-9a-f]{12}[0-9a-f]+\Z")

StatusFilter = Literal["queued", "offered", "assigned", "closed", "open"]


class HistoryFilter(msgspec.Struct, kw_only=True):
    """What a page asks for; None: any. ``since``/``until`` bound the opening time (ms,
    until excluded), ``cursor`` is the last id of the previous page."""

    status: StatusFilter | None = None
    queue: str | None = None
    agent: str | None = None
    channel: str | None = None
    customer: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    q: str | None = None
    limit: int = 50
    cursor: str | None = None


class ConversationSummary(msgspec.Struct, kw_only=True):
    id: str
    state: ConversationState
    channel: str
    account: str
    queue: str
    customer: Customer
    agent: str | None  # holding it now, or when it closed
    created_at: datetime
    closed_at: datetime | None
    messages: int
    match: str | None = None  # with q: the first message that matched, shortened


class HistoryPage(msgspec.Struct, kw_only=True):
    conversations: list[ConversationSummary]
    # Pass as ``cursor`` for the next page; None: no more.
    next_cursor: str | None
    scanned: int


class Transcript(msgspec.Struct, kw_only=True):
    conversation: ConversationSummary
    messages: list[Message]


def created_ms(conversation_id: str) -> int:
    """The opening time an id carries (router/ids.py: prefix, 12 hex digits of ms)."""
    return int(conversation_id[1:13], 16)


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class ConversationHistory:
    def __init__(self, redis: Any, keys: RouterKeys) -> None:
        self.redis, self.keys = redis, keys

    async def _ids(self) -> list[str]:
        scan = self.redis.hscan_iter(self.keys.state, count=1000)
        ids = [text(field) async for field, _ in scan]
        return sorted({i for i in ids if ID_PATTERN.match(i)}, reverse=True)

    async def page(self, f: HistoryFilter, max_scan: int) -> HistoryPage:
        candidates = [
            i
            for i in await self._ids()
            if (f.cursor is None or i < f.cursor)
            and (f.since_ms is None or created_ms(i) >= f.since_ms)
            and (f.until_ms is None or created_ms(i) < f.until_ms)
        ]
        found: list[ConversationSummary] = []
        examined = 0
        while examined < len(candidates) and len(found) < f.limit and examined < max_scan:
            batch = candidates[examined : examined + min(BATCH, max_scan - examined)]
            read = {s.id: (s, m) for s, m in await self._read(batch, with_text=f.q is not None)}
            for conv in batch:
                examined += 1
                summary = read.get(conv)
                if summary and _matches(summary[0], f) and _text_matches(summary, f.q):
                    found.append(_with_match(summary, f.q))
                    if len(found) >= f.limit:
                        break
        more = examined < len(candidates)
        return HistoryPage(
            conversations=found,
            next_cursor=candidates[examined - 1] if more and examined else None,
            scanned=examined,
        )

    async def _read(
        self, ids: Sequence[str], with_text: bool
    ) -> list[tuple[ConversationSummary, list[Message]]]:
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in ids:
                pipe.hget(k.meta, conv)
                pipe.hget(k.state, conv)
                pipe.hget(k.agent_of, conv)
                pipe.hget(k.route, conv)
                pipe.zscore(k.closed, conv)
                if with_text:
                    pipe.lrange(k.messages(conv), 0, -1)
                else:
                    pipe.llen(k.messages(conv))
            raw = await pipe.execute()
        out = []
        for i, conv in enumerate(ids):
            meta, state, agent, route, closed, messages = raw[i * 6 : i * 6 + 6]
            if meta is None:
                continue
            m = decode_meta(meta)
            r = decode_route(route) if route else None
            st = text(state) or "closed"
            decoded = [decode_message(x) for x in messages] if with_text else []
            summary = ConversationSummary(
                id=conv,
                state=st,  # type: ignore[arg-type]
                channel=m.channel,
                account=m.account,
                queue=r.queue if r else m.queue,
                customer=m.customer,
                agent=text(agent) or (r.closed_holder if r and st == "closed" else None),
                created_at=m.created_at,
                closed_at=_utc(closed) if closed is not None and st == "closed" else None,
                messages=len(decoded) if with_text else int(messages),
            )
            out.append((summary, decoded))
        return out

    async def transcript(self, conversation_id: str) -> Transcript | None:
        found = await self._read([conversation_id], with_text=True)
        if not found:
            return None
        summary, messages = found[0]
        return Transcript(conversation=summary, messages=messages)


def _matches(s: ConversationSummary, f: HistoryFilter) -> bool:
    if f.status == "open" and s.state == "closed":
        return False
    if f.status not in (None, "open") and s.state != f.status:
        return False
    if f.customer is not None:
        name = (s.customer.name or "").casefold()
        if s.customer.id != f.customer and f.customer.casefold() not in name:
            return False
    return (
        (f.queue is None or s.queue == f.queue)
        and (f.agent is None or s.agent == f.agent)
        and (f.channel is None or s.channel == f.channel)
    )


def _text_matches(summary: tuple[ConversationSummary, list[Message]], q: str | None) -> bool:
    return q is None or _first_match(summary[1], q) is not None


def _first_match(messages: list[Message], q: str) -> Message | None:
    needle = q.casefold()
    return next((m for m in messages if needle in m.text.casefold()), None)


def _with_match(
    summary: tuple[ConversationSummary, list[Message]], q: str | None
) -> ConversationSummary:
    s, messages = summary
    if q is None:
        return s
    hit = _first_match(messages, q)
    return msgspec.structs.replace(s, match=hit.text[:SNIPPET_CHARS] if hit else None)
