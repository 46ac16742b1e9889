"""A conversation that goes back to waiting from an agent (the grace period, a transfer) gets
its queue's waiting timers again, timed from its original enqueue time: what came due while the
agent held it happens at the next sweep, and the maximum wait comes at most once."""

from __future__ import annotations

import pytest
from test_router.test_timers_and_preferences import NOW, arrive, start

from router.config import EscalationStep, QueueConfig

GRACE_MS = 60_000
SENIOR = {"id": "senior", "capacity": {"webchat": 1}, "skills": {"billing": 3}}
HELPER = {"id": "helper", "capacity": {"webchat": 1}}


def billing(after_max_wait: str = "auto_reply", max_wait_s: float = 30) -> QueueConfig:
    return QueueConfig(
        name="billing",
        skills={"billing": 3},
        overflow="general",
        escalation=[EscalationStep(after_s=10, overflow=True)],
        ageing_s=20,
        max_wait_s=max_wait_s,
        after_max_wait=after_max_wait,
        max_wait_message="leave us a message",
    )


def kinds(events) -> list[tuple[str, str, str]]:
    return [(e.kind, e.conversation_id, e.detail) for e in events]


async def held_then_dropped(router, presence, conv, at):
    """The senior agent takes the conversation at ``at`` and drops at once, unanswered."""
    [offer] = await router.dispatch(at)
    assert (offer.conversation_id, offer.agent) == (conv, "senior")
    await router.accept(offer.offer_id, "senior", at + 1)
    await presence.disconnect("senior", "conn-senior", at + 2)


async def test_grace_requeue_gets_the_timers_that_came_due_while_held(redis, tenant):
    router, presence = await start(
        redis, tenant, [SENIOR, HELPER], [billing(), QueueConfig(name="general")]
    )
    conv = await arrive(router, "ann", "billing", NOW, priority=2)
    await held_then_dropped(router, presence, conv, NOW + 1_000)
    # Escalation, ageing and the maximum wait come due while senior holds it: dropped.
    assert await router.fire_timers(NOW + 31_000) == []
    requeued_at = NOW + 1_003 + GRACE_MS
    events = await router.expire_agents(requeued_at, GRACE_MS)
    assert ("senior", conv, "requeued") in [(e.agent, e.conversation_id, e.what) for e in events]
    route = await router.route(conv)
    assert route is not None and (route.priority, route.enqueued_ms) == (2, NOW)  # kept
    assert await router.dispatch(requeued_at + 1) == []  # helper lacks the skill; no one else
    # The next sweep: the escalation step (overflow), the next ageing step, the maximum wait.
    events = await router.fire_timers(requeued_at + 250)
    assert sorted(kinds(events)) == [
        ("aged", conv, "3"),
        ("escalated", conv, "1"),
        ("max_wait", conv, "auto_reply"),
    ]
    [offer] = await router.dispatch(requeued_at + 300)
    assert (offer.conversation_id, offer.agent) == (conv, "helper")
    # Ageing goes on, a step every ageing_s; the maximum wait came once.
    await router.decline(offer.offer_id, "helper", requeued_at + 400)
    assert await router.fire_timers(requeued_at + 20_000) == []
    assert kinds(await router.fire_timers(requeued_at + 20_250)) == [("aged", conv, "4")]


@pytest.mark.parametrize("action", ["auto_reply", "leave_message"])
async def test_grace_requeue_does_not_bring_a_maximum_wait_that_came(redis, tenant, action):
    router, presence = await start(
        redis,
        tenant,
        [SENIOR, HELPER],
        [billing(action, max_wait_s=5), QueueConfig(name="general")],
    )
    await presence.set_status("senior", "away")
    conv = await arrive(router, "ann", "billing", NOW)
    assert kinds(await router.fire_timers(NOW + 6_000)) == [("max_wait", conv, action)]
    await presence.set_status("senior", "available")
    await held_then_dropped(router, presence, conv, NOW + 7_000)
    assert await router.fire_timers(NOW + 31_000) == []
    requeued_at = NOW + 7_003 + GRACE_MS
    await router.expire_agents(requeued_at, GRACE_MS)
    events = await router.fire_timers(requeued_at + 250)
    assert sorted(kinds(events)) == [("aged", conv, "1"), ("escalated", conv, "1")]
    route = await router.route(conv)
    assert route is not None and route.leave_message == (action == "leave_message")


@pytest.mark.parametrize("to_agent", [None, "carol"])
async def test_transfer_gives_the_target_queues_timers_from_the_original_enqueue(
    redis, tenant, to_agent
):
    carol = {"id": "carol", "capacity": {"webchat": 1}, "skills": {"billing": 3}}
    router, presence = await start(
        redis,
        tenant,
        [{"id": "alice", "capacity": {"webchat": 1}}, HELPER, carol],
        [QueueConfig(name="general", channels=["webchat"]), billing()],
    )
    for agent in ("helper", "carol"):
        await presence.set_status(agent, "away")
    conv = await arrive(router, "ann", "general", NOW, priority=1)
    [offer] = await router.dispatch(NOW + 1_000)
    await router.accept(offer.offer_id, offer.agent, NOW + 1_001)
    transferred_at = NOW + 40_000
    await router.transfer(conv, "alice", transferred_at, to_queue="billing", to_agent=to_agent)
    route = await router.route(conv)
    assert route is not None
    assert (route.queue, route.priority, route.enqueued_ms) == ("billing", 1, NOW)
    assert route.preferred_agent == to_agent
    # The target queue's steps, timed from the original enqueue: all due, at the next sweep.
    # The priority is kept; ageing goes on from its next step (20 s after enqueue).
    events = await router.fire_timers(transferred_at + 250)
    assert sorted(kinds(events)) == [
        ("aged", conv, "2"),
        ("escalated", conv, "1"),
        ("max_wait", conv, "auto_reply"),
    ]
    # Overflow to general: helper (no billing skill) may take it now.
    await presence.set_status("helper", "available")
    [offer] = await router.dispatch(transferred_at + 300)
    assert (offer.conversation_id, offer.agent) == (conv, "helper")
