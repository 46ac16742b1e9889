"""Whether an agent is eligible for a queue, and their share of its work: the one Python
statement of what dispatch.lua checks before it offers a conversation, for everything that
reports on routing (the admin API's agent counts, the occupancy gauges).

dispatch.lua must keep its own copy, inside the script; tests/test_router/test_eligibility.py
asks both the same questions so that the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from presence.agents import AgentSpec
from router.config import QueueConfig

TOTAL = "*"  # the load field of an agent's conversations across channels


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """An eligible agent's part in a queue's work."""

    capacity: int  # conversations they may hold at once on the queue's channels, max_total applied
    load: int  # of which open or offered now, at most capacity
    room: bool  # whether dispatch could offer them one more of the queue's conversations now


def share(
    agent: AgentSpec, queue: QueueConfig, load: Mapping[str, int] | None = None
) -> Share | None:
    """The agent's share in the queue, None when routing can never give them its
    conversations: a skill below the queue's level, or no capacity on its channels (on any
    channel when the queue names none) once ``max_total`` caps it. ``load``: the agent's
    open and offered conversations per channel, with their total across channels under
    ``"*"``; none when left out."""
    if any(agent.skills.get(skill, 0) < level for skill, level in queue.skills.items()):
        return None
    channels = queue.channels or list(agent.capacity)
    capacity = sum(agent.capacity.get(c, 0) for c in channels)
    if agent.max_total is not None:
        capacity = min(capacity, agent.max_total)
    if capacity <= 0:
        return None
    load = load or {}
    # As dispatch.lua's fits(): room on the conversation's channel and within the total.
    room_in_total = agent.max_total is None or load.get(TOTAL, 0) < agent.max_total
    room = room_in_total and any(load.get(c, 0) < agent.capacity.get(c, 0) for c in channels)
    return Share(
        capacity=capacity,
        load=min(capacity, sum(load.get(c, 0) for c in channels)),
        room=room,
    )
