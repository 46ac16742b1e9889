"""Lifecycle events: what a conversation went through, one Redis Stream per tenant
(RouterKeys.events). The router's Lua scripts write them in the call that makes the change
(router/lua/_common.lua, emit_event), so that a process dying in between loses or invents
none; the few changes made outside Lua (a gateway auto-reply, an SLA answer) write theirs
in the same MULTI as the change. Readers (webhooks, an export) decode entries with
``decode_entry``. docs/events.md lists every type and its data."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec

# Types written today, and those reserved for features to come (docs/events.md).
EVENT_TYPES = (
    "conversation_created",
    "conversation_queued",
    "conversation_offered",
    "offer_declined",
    "offer_timed_out",
    "offer_revoked",
    "conversation_assigned",
    "message_in",
    "message_out",
    "message_out_failed",
    "note_added",
    "conversation_transferred",
    "conversation_escalated",
    "sla_breached",
    "conversation_closed",
    "csat_received",
    "qa_scored",
    "complaint_reminder",
    "complaint_deadline_missed",
)
RESERVED_EVENT_TYPES: tuple[str, ...] = ()


class EventsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[events]`` table. The stream is trimmed approximately (whole radix-tree nodes,
    which is what makes trimming cheap on every write): by length always, by age too when
    ``max_age_s`` is above 0."""

    enabled: bool = True
    max_len: int = 1_000_000
    max_age_s: float = 7 * 86400.0

    def trim_args(self) -> dict[str, int]:
        """The scripts' last two arguments (router/lua/_common.lua): 0 entries = off."""
        return {
            "events_max_len": self.max_len if self.enabled else 0,
            "events_max_age_ms": int(self.max_age_s * 1000),
        }


class Event(msgspec.Struct, kw_only=True):
    """One stream entry as readers and webhook receivers see it. ``id`` is the stream id,
    unique and increasing per tenant: a receiver dedupes on it."""

    id: str
    type: str
    occurred_at: int  # ms since the epoch
    tenant: str
    conversation_id: str
    data: dict[str, Any]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_entry(entry_id: Any, fields: dict[Any, Any]) -> Event:
    """A stream entry (as redis-py returns it) as an Event."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    try:
        data = json.loads(f.get("data") or "{}")
    except ValueError:
        data = {"unreadable": f.get("data")}
    return Event(
        id=_text(entry_id),
        type=f.get("type", ""),
        occurred_at=int(f.get("occurred_at") or 0),
        tenant=f.get("tenant", ""),
        conversation_id=f.get("conversation_id", ""),
        data=data if isinstance(data, dict) else {"value": data},
    )


def add_event(
    pipe: Any,
    stream: str,
    settings: EventsConfig,
    tenant: str,
    kind: str,
    conversation_id: str,
    now_ms: int,
    data: dict[str, Any],
) -> None:
    """Queue an XADD (and its trim) on a MULTI pipeline, beside the change it describes,
    written as emit_event writes it in Lua."""
    if not settings.enabled:
        return
    fields = {
        "type": kind,
        "occurred_at": str(now_ms),
        "tenant": tenant,
        "conversation_id": conversation_id,
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
    }
    pipe.xadd(stream, fields, maxlen=settings.max_len, approximate=True)
    # Stream ids are Redis's clock (this process's is close enough): not now_ms, which a
    # caller may set.
    max_age_ms = int(settings.max_age_s * 1000)
    wall_ms = int(time.time() * 1000)
    if max_age_ms > 0 and wall_ms > max_age_ms:
        pipe.xtrim(stream, minid=str(wall_ms - max_age_ms), approximate=True)


def event_json(value: msgspec.Struct) -> str:
    """A struct (a message, a note) as an event's data carries it."""
    return msgspec.json.encode(value).decode()
