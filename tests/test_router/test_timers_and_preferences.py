"""Router features on a virtual clock: ageing, total capacity across channels, longest idle,
a returning customer's sticky wait, escalation timers, and queues closed for the night."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, with_defaults
from presence.registry import Presence
from router.config import EscalationStep, QueueConfig
from router.engine import Router
from router.ids import new_id
from router.results import Placement

NOW = 1_800_000_000_000


async def start(redis, tenant, agents, queues, **routing):
    core = with_defaults(
        CoreConfig(agents=[AgentConfig(token="x", **a) for a in agents], queues=queues)
    )
    for key, value in routing.items():
        setattr(core.routing, key, value)
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    presence = Presence(redis, tenant)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    for a in core.agents:
        await presence.connect(a.id, "node-1", f"conn-{a.id}", "available")
    return router, presence


async def arrive(router, customer, queue, at, channel="webchat", priority=None):
    message = Message(
        id=new_id("m", at),
        direction="in",
        text=customer,
        sent_at=datetime.fromtimestamp(at / 1000, UTC),
    )
    spec = router.queues[queue]
    placement = Placement(queue=queue, priority=spec.priority if priority is None else priority)
    result = await router.ingest(
        channel, "default", f"{customer}-{at}", Customer(id=customer), message, at, placement
    )
    return result.conversation_id


async def test_ageing_lifts_an_old_low_priority_conversation(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general", ageing_s=10)],
    )
    await presence.set_status("alice", "away")
    old = await arrive(router, "old", "general", NOW, priority=0)
    await arrive(router, "vip", "general", NOW + 15_000, priority=1)
    events = await router.fire_timers(NOW + 20_000)
    assert [(e.kind, e.conversation_id, e.detail) for e in events] == [("aged", old, "1")]
    await presence.set_status("alice", "available")
    [offer] = await router.dispatch(NOW + 20_001)
    # Same priority now, and the old one waited longer.
    assert offer.conversation_id == old


async def test_total_capacity_across_channels(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 2, "email": 2}, "max_total": 3}],
        [QueueConfig(name="general")],
    )
    for i, channel in enumerate(["webchat", "webchat", "email", "email"]):
        await arrive(router, f"c{i}", "general", NOW + i, channel=channel)
    offers = await router.dispatch(NOW + 10)
    assert len(offers) == 3
    loads = await presence.loads("alice")
    assert loads == {"webchat": 2, "email": 1}


async def test_longest_idle_picks_the_agent_offered_work_longest_ago(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 5}}, {"id": "bob", "capacity": {"webchat": 5}}],
        [QueueConfig(name="general", strategy="longest_idle")],
    )
    await arrive(router, "a", "general", NOW)
    [first] = await router.dispatch(NOW + 1)
    await router.accept(first.offer_id, first.agent, NOW + 2)
    await arrive(router, "b", "general", NOW + 3)
    [second] = await router.dispatch(NOW + 4)
    assert second.agent != first.agent  # the other one has idled longer
    await arrive(router, "c", "general", NOW + 5)
    [third] = await router.dispatch(NOW + 6)
    assert third.agent == first.agent


async def test_returning_customer_waits_briefly_for_a_busy_last_agent(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}, {"id": "bob", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general", sticky_wait_s=20)],
    )
    first = await arrive(router, "ann", "general", NOW)
    [offer] = await router.dispatch(NOW + 1)
    last_agent = offer.agent
    await router.accept(offer.offer_id, last_agent, NOW + 2)
    await router.close(first, last_agent, NOW + 3)
    # Fill the last agent (the other one steps away meanwhile), then ann comes back.
    other = "bob" if last_agent == "alice" else "alice"
    await presence.set_status(other, "away")
    await arrive(router, "zed", "general", NOW + 4)
    [busy] = await router.dispatch(NOW + 5)
    assert busy.agent == last_agent
    await presence.set_status(other, "available")
    await arrive(router, "ann", "general", NOW + 6)
    assert await router.dispatch(NOW + 7) == []  # waits for the last agent, who is full
    [fallback] = await router.dispatch(NOW + 6 + 20_000)
    assert fallback.agent != last_agent


WINDOW_S = 60
# Seconds after the last agent accepted: just inside the window, just past it, long past it.
RETURNS = pytest.mark.parametrize(
    ("returns_after_s", "within"),
    [(WINDOW_S - 1, True), (WINDOW_S + 1, False), (3600, False)],
    ids=["within-window", "just-after", "long-after"],
)


async def _served_once(redis, tenant):
    """ann's first conversation, accepted by one agent and closed: (router, presence, her
    last agent, the other agent, when the last agent accepted)."""
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}, {"id": "bob", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general", sticky_wait_s=20)],
        returning_customer_window_s=WINDOW_S,
    )
    first = await arrive(router, "ann", "general", NOW)
    [offer] = await router.dispatch(NOW + 1)
    last_agent = offer.agent
    other = "bob" if last_agent == "alice" else "alice"
    await router.accept(offer.offer_id, last_agent, NOW + 2)
    await router.close(first, last_agent, NOW + 3)
    return router, presence, last_agent, other, NOW + 2


@RETURNS
async def test_returning_customer_prefers_the_last_agent_only_within_the_window(
    redis, tenant, returns_after_s, within
):
    router, _, last_agent, other, accepted = await _served_once(redis, tenant)
    # Normal routing picks the other agent (same load, idle longer): only the
    # returning-customer preference sends ann back to her last agent.
    back = accepted + returns_after_s * 1000
    await arrive(router, "ann", "general", back)
    [again] = await router.dispatch(back + 1)
    assert again.agent == (last_agent if within else other)


@RETURNS
async def test_returning_customer_is_held_for_a_full_last_agent_only_within_the_window(
    redis, tenant, returns_after_s, within
):
    router, presence, last_agent, other, accepted = await _served_once(redis, tenant)
    # Fill the last agent (the other one steps away meanwhile).
    await presence.set_status(other, "away")
    await arrive(router, "zed", "general", NOW + 4)
    [busy] = await router.dispatch(NOW + 5)
    assert busy.agent == last_agent
    await router.accept(busy.offer_id, last_agent, NOW + 6)
    await presence.set_status(other, "available")
    back = accepted + returns_after_s * 1000
    await arrive(router, "ann", "general", back)
    offers = await router.dispatch(back + 1)
    if within:
        assert offers == []  # waits for her last agent, though the other one is free
    else:
        assert [o.agent for o in offers] == [other]  # routed at once, not held


async def test_escalation_steps_pause_while_the_queue_is_closed(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "junior", "capacity": {"webchat": 1}, "skills": {"billing": 1}}],
        [
            QueueConfig(
                name="billing",
                skills={"billing": 3},
                escalation=[EscalationStep(after_s=30, relax_skills=True)],
            )
        ],
    )
    conv = await arrive(router, "ann", "billing", NOW)
    assert await router.dispatch(NOW + 1) == []  # junior lacks the level
    # Closed: the due step waits.
    assert await router.fire_timers(NOW + 31_000, open_queues=[]) == []
    assert await router.dispatch(NOW + 31_001, open_queues=[]) == []
    # Open again: the step applies and junior may take it.
    events = await router.fire_timers(NOW + 40_000, open_queues=["billing"])
    assert [(e.kind, e.conversation_id) for e in events] == [("escalated", conv)]
    [offer] = await router.dispatch(NOW + 40_001, open_queues=["billing"])
    assert offer.agent == "junior"


async def test_waiting_in_a_closed_queue_counts_from_the_opening(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general", max_wait_s=60, after_max_wait="auto_reply")],
    )
    opening = NOW + 3_600_000
    message = Message(id="m1", direction="in", text="night", sent_at=datetime.now(UTC))
    placement = Placement(queue="general", priority=0, waits_from_ms=opening)
    result = await router.ingest(
        "webchat", "default", "e1", Customer(id="owl"), message, NOW, placement
    )
    assert await router.fire_timers(NOW + 120_000) == []
    events = await router.fire_timers(opening + 60_000)
    assert [(e.kind, e.conversation_id) for e in events] == [("max_wait", result.conversation_id)]


async def test_inactivity_can_close_without_a_warning(redis, tenant):
    router, _ = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general", inactivity_close_s=30)],
    )
    conv = await arrive(router, "ann", "general", NOW)
    [offer] = await router.dispatch(NOW + 1)
    await router.accept(offer.offer_id, "alice", NOW + 2)
    assert await router.fire_timers(NOW + 20_000) == []
    events = await router.fire_timers(NOW + 30_003)
    assert [(e.kind, e.conversation_id) for e in events] == [("idle_close", conv)]


async def test_auto_accept_remembers_the_customers_last_agent(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 2}}, {"id": "bob", "capacity": {"webchat": 2}}],
        [QueueConfig(name="general", auto_accept=True)],
    )
    first = await arrive(router, "ann", "general", NOW)
    [assigned] = await router.dispatch(NOW + 1)
    assert assigned.assigned and assigned.offer_id is None
    await router.close(first, assigned.agent, NOW + 2)
    # The other agent is idler, but ann returns to her last agent.
    await arrive(router, "ann", "general", NOW + 3)
    [again] = await router.dispatch(NOW + 4)
    assert again.agent == assigned.agent
    assert await presence.loads(assigned.agent) == {"webchat": 1}


async def test_a_reopened_conversation_is_unanswered_again(redis, tenant):
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}],
        [QueueConfig(name="general")],
    )
    message = Message(id="m1", direction="in", text="hi", sent_at=datetime.now(UTC))
    placement = Placement(queue="general", priority=0)
    customer = Customer(id="ann")
    first = await router.ingest("webchat", "default", "e1", customer, message, NOW, placement)
    [offer] = await router.dispatch(NOW + 1)
    await router.accept(offer.offer_id, "alice", NOW + 2)
    reply = Message(id="m2", direction="out", text="hello", sent_at=datetime.now(UTC))
    await router.add_reply(first.conversation_id, "alice", "r1", reply, NOW + 3)
    await router.close(first.conversation_id, "alice", NOW + 4)
    again = await router.ingest(
        "webchat", "default", "e2", customer, message, NOW + 5, placement, reopen_within_s=60
    )
    assert again.reopened and again.conversation_id == first.conversation_id
    [offer] = await router.dispatch(NOW + 6)
    await router.accept(offer.offer_id, "alice", NOW + 7)
    await presence.disconnect("alice", "conn-alice", NOW + 8)
    events = await router.expire_agents(NOW + 100_000, grace_ms=1000)
    assert ("alice", first.conversation_id, "requeued") in [
        (e.agent, e.conversation_id, e.what) for e in events
    ]


async def test_without_a_reopen_window_a_message_right_after_a_close_opens_a_new_one(redis, tenant):
    """The close-then-write race: a channel without a reopen window (web chat, the fake one)
    never reopens, however soon the customer writes again: in the very millisecond of the
    close, or stamped before it by a process whose clock is a little behind the closer's."""
    router, _ = await start(
        redis, tenant, [{"id": "alice", "capacity": {"webchat": 1}}], [QueueConfig(name="general")]
    )
    conv = await arrive(router, "ann", "general", NOW)
    seen = {conv}
    for step, skew in enumerate((0, -3, 0, -1, 0)):
        closed_at = NOW + 10 * (step + 1)
        await router.close(conv, None, closed_at)
        conv = await arrive(router, "ann", "general", closed_at + skew)
        assert conv not in seen, f"step {step}: the closed {conv} came back"
        seen.add(conv)
        assert (await router.conversation(conv)).state == "queued"


async def test_a_reopen_window_is_kept_to_the_millisecond(redis, tenant):
    router, _ = await start(
        redis, tenant, [{"id": "alice", "capacity": {"webchat": 1}}], [QueueConfig(name="general")]
    )
    placement = Placement(queue="general", priority=0)
    customer = Customer(id="ann")

    async def write(external_id: str, at: int):
        message = Message(id=new_id("m", at), direction="in", text="hi", sent_at=datetime.now(UTC))
        return await router.ingest(
            "email", "default", external_id, customer, message, at, placement, reopen_within_s=60
        )

    first = (await write("e1", NOW)).conversation_id
    await router.close(first, None, NOW + 1)
    within = await write("e2", NOW + 1 + 60_000)
    assert within.reopened and within.conversation_id == first
    await router.close(first, None, NOW + 70_000)
    late = await write("e3", NOW + 70_000 + 60_001)
    assert late.created and not late.reopened and late.conversation_id != first


async def test_closed_conversations_are_forgotten_after_the_retention(redis, tenant):
    router, _ = await start(
        redis, tenant, [{"id": "alice", "capacity": {"webchat": 1}}], [QueueConfig(name="general")]
    )
    old = await arrive(router, "ann", "general", NOW)
    await router.close(old, None, NOW + 1)
    recent = await arrive(router, "bob", "general", NOW + 2)
    await router.close(recent, None, NOW + 50_000)
    assert await router.purge_closed(NOW + 60_000, retention_s=30) == 1
    assert await router.conversation(old) is None
    assert not await redis.exists(router.keys.messages(old))
    assert (await router.conversation(recent)).state == "closed"
