"""The contracts of the router's Lua scripts (router/lua/*.lua): the KEYS and ARGV each takes,
in order. The Router calls them by these names; each script's header names the same entries
in the same order. Key names are the attributes of RouterKeys and PresenceKeys (filled in once
per Router) or, for keys built per call, their RouterKeys method names."""

from __future__ import annotations

from presence.lua import LuaContract

# The queues a script may touch, as keys and, in the same order, by name.
QUEUES = ("queue_keys",)
QUEUE_NAMES = ("queue_names",)
# The lifecycle events a script writes go last, counted from the end (KEYS[#KEYS],
# ARGV[#ARGV-1..]), so that they stay put when the fixed keys or the variadic groups change;
# the router fixes all three (RouterKeys.events and its [events] settings).
EVENTS = {"last_keys": ("events",), "last_args": ("events_max_len", "events_max_age_ms")}

INGEST = LuaContract(
    "ingest",
    keys=(
        "dedupe", "customer_open", "state", "route", "meta", "messages", "queue", "agent_of",
        "node", "timers", "queue_config", "last_closed", "first_reply",
    ),
    more_keys=QUEUES,
    args=(
        "field", "expected", "new_conversation", "message", "message_id", "new_meta",
        "new_route", "score", "dedupe_ttl_ms", "now_ms", "reopen", "reopen_within_ms",
        "message_json", "conversation_json", "timer_item_count",
    ),
    more_args=("timer_items", *QUEUE_NAMES),
    idempotent=True,
    **EVENTS,
)  # fmt: skip
DISPATCH = LuaContract(
    "dispatch",
    keys=(
        "available", "skills", "capacity", "load", "last_assigned", "node", "state", "route",
        "offer_of", "declined", "offers", "offer_timers", "queue_config", "offer_seq",
        "auto_accept", "agent_of", "assignments", "round_robin", "timers", "last_agent",
        "agent_index_info", "agent_index",
    ),
    more_keys=QUEUES,
    args=("now_ms", "offer_timeout_ms", "batch", "scan_limit", "decline_cooldown_ms"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)  # fmt: skip
RELEASE = LuaContract(
    "release",
    keys=(
        "offers", "offer_timers", "offer_of", "state", "route", "load", "declined", "missed",
        "status", "available", "status_reason", "last_assigned", "agent_index_info",
        "agent_index",
    ),
    more_keys=QUEUES,
    args=("mode", "now_ms", "target", "agent", "unused", "missed_before_away"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)  # fmt: skip
ACCEPT = LuaContract(
    "accept",
    keys=(
        "offers", "offer_timers", "offer_of", "state", "agent_of", "assignments", "declined",
        "route", "missed", "timers", "queue_config", "last_agent", "last_assigned",
        "available", "load", "agent_index_info", "agent_index",
    ),
    args=("offer_id", "agent", "now_ms"),
    **EVENTS,
)  # fmt: skip
CLOSE = LuaContract(
    "close",
    keys=(
        "state", "agent_of", "route", "offer_of", "offers", "offer_timers", "assignments",
        "load", "customer_open", "declined", "timers", "last_closed", "closed",
        "last_assigned", "available", "agent_index_info", "agent_index",
    ),
    more_keys=QUEUES,
    args=("conversation", "agent", "now_ms", "reason", "close_reason"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)  # fmt: skip
REPLY = LuaContract(
    "reply",
    keys=(
        "agent_of", "reply_once", "messages", "first_reply", "route", "queue_config", "timers",
    ),
    args=(
        "conversation", "agent", "message_id", "message", "marker_ttl_ms", "now_ms",
        "message_json",
    ),
    **EVENTS,
)  # fmt: skip
EXPIRE_AGENTS = LuaContract(
    "expire_agents",
    keys=(
        "disconnected_at", "status", "available", "assignments", "state", "agent_of", "route",
        "load", "first_reply", "offers", "offer_timers", "offer_of", "declined", "timers",
        "last_assigned", "queue_config", "agent_index_info", "agent_index",
    ),
    more_keys=QUEUES,
    args=("now_ms", "grace_ms", "agent"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)  # fmt: skip
TIMERS = LuaContract(
    "timers",
    keys=("timers", "state", "route", "queue_config"),
    more_keys=QUEUES,
    args=("now_ms", "limit", "lease_ms"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)
TRANSFER = LuaContract(
    "transfer",
    keys=(
        "state", "agent_of", "route", "assignments", "load", "declined", "timers",
        "first_reply", "queue_config", "notes", "available", "last_assigned",
        "agent_index_info", "agent_index",
    ),
    more_keys=QUEUES,
    args=(
        "conversation", "by_agent", "to_queue", "to_agent", "now_ms", "offer_timeout_ms", "note",
        "note_record",
    ),
    more_args=QUEUE_NAMES,
    **EVENTS,
)  # fmt: skip
REPLACE = LuaContract(
    "replace",
    keys=("state", "route", "timers", "queue_config"),
    more_keys=QUEUES,
    args=("conversation", "queue", "priority", "skills", "grade", "sla_s", "basis", "now_ms"),
    more_args=QUEUE_NAMES,
    **EVENTS,
)
PURGE = LuaContract(
    "purge",
    keys=(
        "closed", "state", "route", "meta", "offer_seq", "first_reply", "declined",
        "last_closed",
    ),
    more_keys=("message_lists", "note_lists"),
    more_args=("conversations",),
)  # fmt: skip
NOTE = LuaContract(
    "note",
    keys=("state", "agent_of", "notes"),
    args=("conversation", "agent", "note", "keep", "note_json", "now_ms"),
    **EVENTS,
)

DEADLINES = LuaContract(
    "deadlines",
    keys=("state", "route", "timers"),
    args=("conversation", "deadlines"),
    more_args=("timer_items",),
)

FOLLOWUP = LuaContract(
    "followup",
    keys=("rating", "ask", "qa", "qa_pending", "state"),
    args=(
        "conversation", "customer", "agent", "queue", "channel", "closed_ms", "ask_until_ms",
        "qa_reasons", "grade", "keep_ms",
    ),
    idempotent=True,
)  # fmt: skip
CSAT = LuaContract(
    "csat",
    keys=("rating", "ask", "customer_open", "qa", "qa_pending"),
    args=(
        "conversation", "customer", "score", "comment", "now_ms", "reply", "low_at_most",
        "keep_ms",
    ),
    idempotent=True,
    **EVENTS,
)  # fmt: skip
QA_SCORE = LuaContract(
    "qa_score",
    keys=("qa", "qa_pending", "qa_scored"),
    args=("conversation", "score", "items", "by", "note", "now_ms"),
    **EVENTS,
)

CONTRACTS = (
    INGEST, DISPATCH, RELEASE, ACCEPT, CLOSE, REPLY, EXPIRE_AGENTS, TIMERS, TRANSFER, REPLACE,
    PURGE, NOTE, DEADLINES, FOLLOWUP, CSAT, QA_SCORE,
)  # fmt: skip
