"""Why a conversation waits: the one answer the admin API gives for a conversation and for
each waiting entry of a queue (``waiting_reason``), worked out from what the admin API reads
anyway, so that a supervisor sees at a glance whether a customer waits for an agent who is
not there, for room, for a re-offer after declines, or for nothing at all.

It is a pure function of a snapshot, never a routing decision: dispatch.lua decides, and this
module follows its order of questions (docs/routing.md, "Why a conversation waits"), with
router/eligibility.py's statement of which agents could ever take the conversation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from presence.agents import AgentSpec
from router.config import QueueConfig
from router.eligibility import eligible, has_room
from router.route import Route

WaitingReason = Literal[
    "offered",
    "outside_hours",
    "held_for_agent",
    "no_eligible_agent",
    "no_agent_available",
    "no_room",
    "all_declined",
    "dispatching",
]

AVAILABLE = "available"


class WaitingFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the answer depends on besides the conversation: read once for many of them."""

    now_ms: int
    open_queues: frozenset[str]
    queues: Mapping[str, QueueConfig]
    agents: Sequence[AgentSpec]
    statuses: Mapping[str, str]  # agent -> status, offline when their socket is gone
    loads: Mapping[str, Mapping[str, int]]  # agent -> channel (and "*") -> open and offered
    offer_timeout_ms: int
    decline_cooldown_ms: int


def requirements(route: Route, queues: Mapping[str, QueueConfig]) -> list[dict[str, int]]:
    """The skills that qualify for the conversation, as dispatch.lua's requirements_of():
    its own (escalation may have relaxed them) or its queue's, or an overflow queue's."""
    own = route.skills
    if own is None:
        queue = queues.get(route.queue)
        own = dict(queue.skills) if queue else {}
    # A queue the scripts do not know asks for no skills (dispatch.lua's queue_config()).
    return [own, *(dict(queues[q].skills) if q in queues else {} for q in route.overflow_queues)]


def waiting_reason(
    state: str,
    route: Route | None,
    declined: Mapping[str, float],
    facts: WaitingFacts,
) -> WaitingReason | None:
    """Why the conversation in ``state`` waits; None when it does not (assigned, closed).
    ``declined``: agent -> ms of their decline (or offer timeout) of this conversation."""
    if state == "offered":
        return "offered"
    if state != "queued" or route is None:
        return None
    if route.queue not in facts.open_queues:
        return "outside_hours"
    now = facts.now_ms
    needs = requirements(route, facts.queues)
    available = {a for a, s in facts.statuses.items() if s == AVAILABLE}
    by_id = {a.id: a for a in facts.agents}

    def room(agent: AgentSpec) -> bool:
        return has_room(agent, route.channel, facts.loads.get(agent.id, {}))

    preferred = by_id.get(route.preferred_agent or "")
    lasts = route.preferred_until_ms is None or now < route.preferred_until_ms
    if preferred is not None and lasts and preferred.id in available:
        qualifies = not route.preferred_must_qualify or eligible(preferred, route.channel, needs)
        if qualifies and not room(preferred):
            return "held_for_agent"
        if qualifies:
            return "dispatching"
    takers = [a for a in facts.agents if eligible(a, route.channel, needs)]
    if not takers:
        return "no_eligible_agent"
    present = [a for a in takers if a.id in available]
    if not present:
        return "no_agent_available"
    free = [a for a in present if room(a)]
    if not free:
        return "no_room"
    recent = [
        declined[a.id]
        for a in free
        if a.id in declined and now - declined[a.id] < facts.decline_cooldown_ms
    ]
    if len(recent) == len(free) and now - max(recent) < facts.offer_timeout_ms:
        return "all_declined"
    return "dispatching"
