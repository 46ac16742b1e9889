"""router/eligibility.py against dispatch.lua: the script keeps its own copy of "may this agent
be offered this queue's conversation", so both are asked the same question over a grid of
agents (skills below, at and above the queue's level, capacity 0, with room and full, capacity
only on a channel the queue does not take, a max_total) on the real Redis, and must agree."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from adapters.model import Customer, Message
from presence.agents import AgentSpec
from presence.registry import Presence
from router.config import QueueConfig, RoutingConfig
from router.eligibility import Share, eligible, has_room, share
from router.engine import Router
from router.ids import new_id
from router.reads import text
from router.results import Placement

NOW = 1_800_000_000_000
AGENT = "ann"
QUEUE = QueueConfig(name="billing", channels=["webchat"], skills={"billing": 2})
# Queues without skills on each channel, to load the agent before the question is asked.
FILL = {"webchat": "fill-chat", "email": "fill-mail"}
QUEUES = [
    QUEUE,
    QueueConfig(name="fill-chat", channels=["webchat"]),
    QueueConfig(name="fill-mail", channels=["email"]),
]


class Case(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    skills: dict[str, int]
    capacity: dict[str, int]
    max_total: int | None = None
    fill: tuple[str, ...] = ()  # channels of the conversations the agent holds already
    offered: bool  # what both must answer


SKILLS = {"below": {"billing": 1}, "at": {"billing": 2}, "above": {"billing": 3}, "none": {}}
CAPACITY = {
    "zero": ({"webchat": 0}, ()),
    "room": ({"webchat": 2}, ("webchat",)),
    "full": ({"webchat": 1}, ("webchat",)),
}
GRID = [
    Case(
        name=f"skills {level}, capacity {room}",
        skills=skills,
        capacity=capacity,
        fill=fill,
        offered=level in ("at", "above") and room == "room",
    )
    for level, skills in SKILLS.items()
    for room, (capacity, fill) in CAPACITY.items()
]
# Skills at the queue's level: (name, capacity, max_total, fill, offered).
AT_LEVEL = [
    ("capacity only on a channel the queue does not take", {"email": 2}, None, (), False),
    ("max_total reached on another channel", {"webchat": 2, "email": 1}, 1, ("email",), False),
    ("max_total with room left", {"webchat": 2, "email": 1}, 2, ("email",), True),
    ("max_total of 0", {"webchat": 2}, 0, (), False),
]
GRID += [
    Case(name=name, skills=SKILLS["at"], capacity=capacity, max_total=total, fill=fill, offered=ok)
    for name, capacity, total, fill, ok in AT_LEVEL
]


async def arrive(router: Router, customer: str, channel: str, queue: str, at: int) -> None:
    sent_at = datetime.fromtimestamp(at / 1000, UTC)
    message = Message(id=new_id("m", at), direction="in", text="hi", sent_at=sent_at)
    await router.ingest(
        channel,
        "default",
        f"{customer}-{at}",
        Customer(id=customer),
        message,
        at,
        Placement(queue=queue, priority=0),
    )


async def agent_load(presence: Presence) -> dict[str, int]:
    """The agent's load per channel and, under "*", in all: the hash dispatch.lua reads."""
    raw = await presence.redis.hgetall(presence.keys.load)
    prefix = AGENT + "|"
    return {text(f)[len(prefix) :]: int(v) for f, v in raw.items() if text(f).startswith(prefix)}


@pytest.mark.parametrize("case", GRID, ids=[c.name for c in GRID])
async def test_dispatch_and_eligibility_agree(redis, tenant, case: Case):
    agent = AgentSpec(
        id=AGENT, skills=case.skills, capacity=case.capacity, max_total=case.max_total
    )
    router = Router(redis, tenant, QUEUES, RoutingConfig())
    presence = Presence(redis, tenant)
    await router.sync_queues()
    await presence.sync_agents([agent])
    await presence.connect(AGENT, "node-1", "conn-1", "available")
    at = NOW
    for i, channel in enumerate(case.fill):
        at += 1
        await arrive(router, f"fill{i}", channel, FILL[channel], at)
        [made] = await router.dispatch(at, open_queues=[FILL[channel]])
        assert made.agent == AGENT

    load = await agent_load(presence)
    part = share(agent, QUEUE, load)
    await arrive(router, "asker", "webchat", QUEUE.name, at + 1)
    decisions = await router.dispatch(at + 2, open_queues=[QUEUE.name])

    offered = [d.agent for d in decisions] == [AGENT]
    assert offered == (part is not None and part.room) == case.offered, (decisions, part)
    # The per-conversation questions (the admin API's waiting reasons) answer the same.
    could = eligible(agent, "webchat", [dict(QUEUE.skills)]) and has_room(agent, "webchat", load)
    assert could == offered, (could, load)


def test_a_share_counts_load_and_capacity_on_the_queues_channels_only():
    agent = AgentSpec(id=AGENT, skills={"billing": 2}, capacity={"webchat": 3, "email": 2})
    load = {"webchat": 1, "email": 2, "*": 3}
    assert share(agent, QUEUE, load) == Share(capacity=3, load=1, room=True)
    # A queue without channels takes every channel the agent has.
    anywhere = QueueConfig(name="any")
    assert share(agent, anywhere, load) == Share(capacity=5, load=3, room=True)
    assert share(agent, anywhere) == Share(capacity=5, load=0, room=True)
    capped = AgentSpec(id=AGENT, capacity={"webchat": 3, "email": 2}, max_total=4)
    assert share(capped, anywhere, {"webchat": 3, "email": 1, "*": 4}) == Share(
        capacity=4, load=4, room=False
    )
