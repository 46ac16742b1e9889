"""The routing scripts on a real Redis: skills, capacity per channel, least-loaded order,
and no agent available."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, QueueConfig, with_defaults
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id
from router.placement import queue_for_channel
from router.results import Placement, RoutingError

NOW = 1_800_000_000_000


def setup(redis, tenant, agents, queues=None):
    core = with_defaults(
        CoreConfig(
            agents=[AgentConfig(token="x", **a) for a in agents],
            queues=[QueueConfig(**q) for q in (queues or [])],
        )
    )
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    return router, Presence(redis, tenant), core


async def start(redis, tenant, agents, queues=None, online=None):
    router, presence, core = setup(redis, tenant, agents, queues)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    for a in core.agents if online is None else [a for a in core.agents if a.id in online]:
        await presence.connect(a.id, "node-1", f"conn-{a.id}", "available")
    return router, presence


def placement(router, channel):
    name = queue_for_channel(channel, list(router.queues.values()), router.default_queue)
    return Placement(queue=name, priority=router.queues[name].priority)


async def arrive(router, customer, channel="webchat", at=NOW, text="hi"):
    message = Message(
        id=new_id("m", at),
        direction="in",
        text=text,
        sent_at=datetime.fromtimestamp(at / 1000, UTC),
    )
    result = await router.ingest(
        channel,
        "default",
        f"{customer}-{at}",
        Customer(id=customer),
        message,
        at,
        placement(router, channel),
    )
    return result.conversation_id


async def test_no_agent_available_leaves_the_conversation_queued(redis, tenant):
    router, _ = await start(redis, tenant, [{"id": "alice", "capacity": {"webchat": 2}}], online=[])
    conv = await arrive(router, "v1")
    assert await router.dispatch(NOW) == []
    stats = await router.queue_stats()
    assert stats["general"].depth == 1
    assert (await router.conversation(conv)).state == "queued"


async def test_capacity_is_per_channel(redis, tenant):
    router, _ = await start(redis, tenant, [{"id": "alice", "capacity": {"email": 5}}])
    await arrive(router, "v1", channel="webchat")
    assert await router.dispatch(NOW) == []  # no web chat capacity at all
    email = await arrive(router, "v2", channel="email", at=NOW + 1)
    offers = await router.dispatch(NOW + 2)
    assert [(o.conversation_id, o.agent) for o in offers] == [(email, "alice")]


async def test_capacity_is_never_exceeded(redis, tenant):
    router, presence = await start(redis, tenant, [{"id": "alice", "capacity": {"webchat": 2}}])
    for i in range(5):
        await arrive(router, f"v{i}", at=NOW + i)
    offers = await router.dispatch(NOW + 10)
    assert len(offers) == 2
    assert await presence.loads("alice") == {"webchat": 2}
    assert await router.dispatch(NOW + 11) == []


async def test_skills_filter_agents(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [
            {"id": "alice", "skills": {"billing": 2}, "capacity": {"webchat": 3}},
            {"id": "bob", "skills": {"billing": 4}, "capacity": {"webchat": 3}},
        ],
        queues=[{"name": "billing", "skills": {"billing": 3}}],
    )
    await arrive(router, "v1")
    offers = await router.dispatch(NOW)
    assert [o.agent for o in offers] == ["bob"]


async def test_least_loaded_by_ratio_of_load_to_capacity(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 4}}, {"id": "bob", "capacity": {"webchat": 2}}],
    )
    for i in range(6):
        await arrive(router, f"v{i}", at=NOW + i)
    offers = await router.dispatch(NOW + 10)
    # alice 0/4 (tie, idle longest, then by id), bob 0/2, alice 1/4, bob 1/2 vs alice 2/4:
    # tie at 0.5 goes to the one assigned longest ago, pending offers counting (bob's offer
    # came earlier in this call); then bob is full.
    assert [o.agent for o in offers] == ["alice", "bob", "alice", "bob", "alice", "alice"]


async def test_higher_priority_first_then_earliest(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1, "email": 1}}],
        queues=[
            {"name": "chat", "channels": ["webchat"], "priority": 1},
            {"name": "vip", "channels": ["email"], "priority": 5},
        ],
    )
    await arrive(router, "v1", channel="webchat", at=NOW)
    await arrive(router, "v2", channel="webchat", at=NOW + 1)
    vip = await arrive(router, "v3", channel="email", at=NOW + 2)
    offers = await router.dispatch(NOW + 3)
    assert offers[0].conversation_id == vip


async def test_accept_is_refused_for_another_agents_offer(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}, {"id": "bob", "capacity": {"webchat": 1}}],
    )
    await arrive(router, "v1")
    [offer] = await router.dispatch(NOW)
    with pytest.raises(RoutingError) as refused:
        await router.accept(offer.offer_id, "bob" if offer.agent == "alice" else "alice", NOW)
    assert refused.value.code == "not_yours"


async def test_redelivered_message_is_stored_once(redis, tenant):
    router, _ = await start(redis, tenant, [{"id": "alice", "capacity": {"webchat": 1}}])
    message = Message(id="m1", direction="in", text="once", sent_at=datetime.now(UTC))
    where = placement(router, "webchat")
    first = await router.ingest(
        "webchat", "default", "ext-1", Customer(id="v"), message, NOW, where
    )
    again = await router.ingest(
        "webchat", "default", "ext-1", Customer(id="v"), message, NOW, where
    )
    assert again.duplicate and again.conversation_id == first.conversation_id
    conversation = await router.conversation(first.conversation_id)
    assert [m.text for m in conversation.messages] == ["once"]


async def test_grace_expiry_requeues_unanswered_with_original_enqueue_time(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 2}}],
    )
    conv = await arrive(router, "v1", at=NOW)
    [offer] = await router.dispatch(NOW + 1)
    await router.accept(offer.offer_id, "alice", NOW + 2)
    await presence.disconnect("alice", "conn-alice", NOW + 100)
    assert await router.expire_agents(NOW + 500, grace_ms=1000) == []
    events = await router.expire_agents(NOW + 1100, grace_ms=1000)
    assert [(e.agent, e.conversation_id, e.what) for e in events] == [
        ("alice", None, "offline"),
        ("alice", conv, "requeued"),
    ]
    assert await presence.status("alice") == "offline"
    assert await presence.loads("alice") == {"webchat": 0}
    stats = await router.queue_stats()
    assert stats["general"].oldest_enqueued_ms == NOW


async def test_when_every_agent_declined_the_oldest_decliner_is_offered_it_again(redis, tenant):
    """Default settings: a 30 s offer timeout, a 300 s cooldown. bob lets his offer time out,
    alice declines hers: the conversation is not left waiting for the cooldown while both have
    room, but offered again one offer timeout after the last decline, to bob, whose decline is
    the older; the conversation timers hold when, so that a sweep wakes the dispatch."""
    two = [{"id": "alice", "capacity": {"webchat": 2}}, {"id": "bob", "capacity": {"webchat": 2}}]
    router, _ = await start(redis, tenant, two, online=["bob"])
    conv = await arrive(router, "v1")
    [first] = await router.dispatch(NOW)
    assert first.agent == "bob"
    [timed_out] = await router.expire_offers(NOW + 30_000)
    assert timed_out.agent == "bob"
    await Presence(redis, tenant).connect("alice", "node-1", "conn-alice", "available")
    [second] = await router.dispatch(NOW + 30_001)
    assert second.agent == "alice"
    last_decline = NOW + 31_000
    await router.decline(second.offer_id or "", "alice", last_decline)
    assert await router.dispatch(last_decline + 1) == []
    due = await redis.zscore(router.keys.timers, f"reoffer|{conv}")
    assert due == last_decline + 30_000
    # Before the timer: still waiting; the timer fires and says a dispatch is due.
    assert await router.dispatch(last_decline + 29_999) == []
    fired = await router.fire_timers(last_decline + 30_000)
    assert [(e.kind, e.conversation_id) for e in fired] == [("reoffer", conv)]
    [again] = await router.dispatch(last_decline + 30_000)
    assert (again.conversation_id, again.agent) == (conv, "bob")


async def test_no_reoffer_while_an_agent_who_did_not_decline_has_room(redis, tenant):
    agents = [{"id": a, "capacity": {"webchat": 1}} for a in ("alice", "bob", "carol")]
    router, _ = await start(redis, tenant, agents, online=["alice", "bob"])
    conv = await arrive(router, "v1")
    other = await arrive(router, "v2", at=NOW + 1)
    offers = await router.dispatch(NOW + 2)
    by_conv = {o.conversation_id: o for o in offers}
    # bob takes the other conversation and is full; alice declines hers.
    await router.accept(by_conv[other].offer_id or "", by_conv[other].agent, NOW + 3)
    declined = by_conv[conv]
    await router.decline(declined.offer_id or "", declined.agent, NOW + 4)
    # The only agent with room declined: re-offered to them after one offer timeout.
    assert await router.dispatch(NOW + 5) == []
    [again] = await router.dispatch(NOW + 4 + 30_000)
    assert again.agent == declined.agent
    await router.decline(again.offer_id or "", declined.agent, NOW + 30_010)
    # carol, who never declined, comes: she is offered it at once, nobody waits for a re-offer.
    await Presence(redis, tenant).connect("carol", "node-1", "conn-carol", "available")
    [third] = await router.dispatch(NOW + 30_011)
    assert third.agent == "carol"


async def test_an_agent_without_room_or_skills_is_never_re_offered(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [
            {"id": "alice", "skills": {"billing": 1}, "capacity": {"webchat": 1}},
            {"id": "bob", "skills": {"billing": 3}, "capacity": {"webchat": 1}},
        ],
        queues=[{"name": "billing", "skills": {"billing": 3}}],
    )
    conv = await arrive(router, "v1")
    [offer] = await router.dispatch(NOW)
    assert offer.agent == "bob"
    await router.decline(offer.offer_id or "", "bob", NOW + 1)
    # alice lacks the skill: she does not count, and bob is re-offered it on time.
    [again] = await router.dispatch(NOW + 1 + 30_000)
    assert (again.conversation_id, again.agent) == (conv, "bob")
