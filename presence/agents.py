"""What routing knows of an agent: their skill levels, how many conversations they may hold
per channel and in all, and whether offers skip their answer. Presence publishes these facts
to Redis for the routing scripts; the gateway's ``[[agents]]`` entries are these facts plus
sign-in and display settings, so one Struct describes an agent to every package."""

from __future__ import annotations

import msgspec


class AgentSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    skills: dict[str, int] = {}  # skill -> level, 1..5
    capacity: dict[str, int] = {}  # channel -> conversations at once; a channel left out is 0
    max_total: int | None = None  # across channels; None: only the per-channel caps
    auto_accept: bool = False  # offers are assigned at once, without the agent's answer
