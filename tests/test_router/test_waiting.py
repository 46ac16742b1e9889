"""router/waiting.py's answers where the sockets cannot hold the state still long enough to
ask: a conversation routing takes at its next round, a preferred agent with room, a
re-offer come due."""

from __future__ import annotations

from presence.agents import AgentSpec
from router.config import QueueConfig
from router.route import Route
from router.waiting import WaitingFacts, waiting_reason

NOW = 1_800_000_000_000
QUEUES = {"general": QueueConfig(name="general")}
AGENTS = [AgentSpec(id=a, capacity={"webchat": 1}) for a in ("alice", "bob")]


def facts(**overrides) -> WaitingFacts:
    base = {
        "now_ms": NOW,
        "open_queues": frozenset(QUEUES),
        "queues": QUEUES,
        "agents": AGENTS,
        "statuses": {"alice": "available", "bob": "available"},
        "loads": {},
        "offer_timeout_ms": 30_000,
        "decline_cooldown_ms": 300_000,
    }
    return WaitingFacts(**(base | overrides))


def route(**fields) -> Route:
    return Route(
        queue="general",
        channel="webchat",
        priority=0,
        enqueued_ms=NOW,
        customer_field="k",
        **fields,
    )


def test_a_conversation_an_agent_can_take_now_is_being_dispatched():
    assert waiting_reason("queued", route(), {}, facts()) == "dispatching"


def test_not_waiting_when_assigned_or_closed():
    assert waiting_reason("assigned", route(), {}, facts()) is None
    assert waiting_reason("closed", route(), {}, facts()) is None


def test_a_preferred_agent_with_room_takes_it_now():
    preferred = route(preferred_agent="alice", preferred_until_ms=NOW + 1)
    assert waiting_reason("queued", preferred, {}, facts()) == "dispatching"
    full = facts(loads={"alice": {"webchat": 1, "*": 1}})
    assert waiting_reason("queued", preferred, {}, full) == "held_for_agent"
    # Once the preference ends, or the agent is not available, it is not held for them.
    late = facts(now_ms=NOW + 1, loads={"alice": {"webchat": 1, "*": 1}})
    assert waiting_reason("queued", preferred, {}, late) == "dispatching"
    away = facts(statuses={"alice": "away", "bob": "available"}, loads=full.loads)
    assert waiting_reason("queued", preferred, {}, away) == "dispatching"


def test_all_declined_until_the_re_offer_is_due():
    declined = {"alice": NOW - 20_000, "bob": NOW - 10_000}
    assert waiting_reason("queued", route(), declined, facts()) == "all_declined"
    due = facts(now_ms=NOW + 20_000)
    assert waiting_reason("queued", route(), declined, due) == "dispatching"
    # One agent who has not declined: offered at once.
    assert waiting_reason("queued", route(), {"alice": NOW - 1}, facts()) == "dispatching"
    # A decline past the cooldown does not count.
    old = {"alice": NOW - 400_000, "bob": NOW - 1}
    assert waiting_reason("queued", route(), old, facts()) == "dispatching"


def test_overflow_lets_other_agents_count():
    queues = QUEUES | {"vip": QueueConfig(name="vip", skills={"vip": 1})}
    vip = Route(queue="vip", channel="webchat", priority=0, enqueued_ms=NOW, customer_field="k")
    f = facts(queues=queues, open_queues=frozenset(queues))
    assert waiting_reason("queued", vip, {}, f) == "no_eligible_agent"
    overflowed = Route(
        queue="vip",
        channel="webchat",
        priority=0,
        enqueued_ms=NOW,
        customer_field="k",
        overflow_queues=["general"],
    )
    assert waiting_reason("queued", overflowed, {}, f) == "dispatching"
