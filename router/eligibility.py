"""Whether an agent is eligible for a queue or a conversation, and their share of a queue's
work: the one Python statement of what dispatch.lua checks before it offers a conversation,
for everything that reports on routing (the admin API's agent counts and waiting reasons,
the occupancy gauges).

dispatch.lua must keep its own copy, inside the script; tests/test_router/test_eligibility.py
asks both the same questions so that the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from presence.agents import AgentSpec
from router.config import QueueConfig

TOTAL = "*"  # the load field of an agent's conversations across channels


class Share(msgspec.Struct, frozen=True, kw_only=True):
    """An eligible agent's part in a queue's work."""

    capacity: int  # conversations they may hold at once on the queue's channels, max_total applied
    load: int  # of which open or offered now, at most capacity
    room: bool  # whether dispatch could offer them one more of the queue's conversations now


def meets(agent: AgentSpec, required: Mapping[str, int]) -> bool:
    """As dispatch.lua's meets(): every skill at the level required, or above."""
    return all(agent.skills.get(skill, 0) >= level for skill, level in required.items())


def eligible(agent: AgentSpec, channel: str, requirements: Sequence[Mapping[str, int]]) -> bool:
    """Whether routing could ever offer the agent a conversation on ``channel`` that needs
    one of ``requirements`` (its own or its queue's skills, then its overflow queues'), as
    dispatch.lua's fits() and qualifies() ask it, load left aside: capacity on the channel
    (and in total, with ``max_total``) and the skills of one requirement."""
    if agent.capacity.get(channel, 0) <= 0:
        return False
    if agent.max_total is not None and agent.max_total <= 0:
        return False
    return any(meets(agent, required) for required in requirements)


def has_room(agent: AgentSpec, channel: str, load: Mapping[str, int]) -> bool:
    """As dispatch.lua's fits(): load on the channel below its capacity, and the total
    (``"*"``) below ``max_total`` when there is one."""
    if load.get(channel, 0) >= agent.capacity.get(channel, 0):
        return False
    return agent.max_total is None or load.get(TOTAL, 0) < agent.max_total


def share(
    agent: AgentSpec, queue: QueueConfig, load: Mapping[str, int] | None = None
) -> Share | None:
    """The agent's share in the queue, None when routing can never give them its
    conversations: a skill below the queue's level, or no capacity on its channels (on any
    channel when the queue names none) once ``max_total`` caps it. ``load``: the agent's
    open and offered conversations per channel, with their total across channels under
    ``"*"``; none when left out."""
    if not meets(agent, queue.skills):
        return None
    channels = queue.channels or list(agent.capacity)
    capacity = sum(agent.capacity.get(c, 0) for c in channels)
    if agent.max_total is not None:
        capacity = min(capacity, agent.max_total)
    if capacity <= 0:
        return None
    load = load or {}
    return Share(
        capacity=capacity,
        load=min(capacity, sum(load.get(c, 0) for c in channels)),
        room=any(has_room(agent, c, load) for c in channels),
    )
