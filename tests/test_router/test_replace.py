"""Placing a waiting conversation afresh (router.replace, lua/replace.lua), as an edited review
asks: the new queue, priority, skills, grade and SLA, the original enqueue time kept, and the
new queue's timers; offered, assigned and closed conversations left as they are."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from test_router.invariants import check_all, read_state

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, with_defaults
from presence.registry import Presence
from router.config import EscalationStep, QueueConfig
from router.engine import Router, queue_score
from router.results import Placement, Replaced, RoutingError

NOW = 1_800_000_000_000
QUEUES = [
    QueueConfig(name="general", channels=["webchat"]),
    QueueConfig(name="complaints", skills={"complaint": 1}, priority=6),
]
ALICE = {"id": "alice", "capacity": {"webchat": 1}, "skills": {"complaint": 3}}
ANGRY = Placement(
    queue="complaints",
    priority=8,
    skills={"complaint": 2},
    grade="A",
    sla_s=600.0,
    basis="angry",
)
CALM = Placement(queue="general", priority=0, basis="calm")


async def stored_route(redis: Any, router: Router, conversation: str) -> dict[str, Any]:
    """The route's JSON as the scripts see it, absent keys absent."""
    return json.loads(await redis.hget(router.keys.route, conversation))


async def start(
    redis: Any, tenant: str, queues: list[QueueConfig] = QUEUES, available: bool = False
) -> tuple[Router, Presence]:
    """A router with alice, who can take everything; away unless ``available``, so that
    conversations wait."""
    core = with_defaults(CoreConfig(agents=[AgentConfig(token="x", **ALICE)], queues=queues))
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    presence = Presence(redis, tenant)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    await presence.connect("alice", "node-1", "conn-alice", "available" if available else "away")
    return router, presence


async def arrive(router: Router, customer: str, at: int, placement: Placement = CALM) -> str:
    message = Message(
        id=f"m-{customer}",
        direction="in",
        text="hi",
        sent_at=datetime.fromtimestamp(at / 1000, UTC),
    )
    got = await router.ingest(
        "webchat", "default", f"x-{customer}", Customer(id=customer), message, at, placement
    )
    return got.conversation_id


async def assert_invariants(redis: Any, tenant: str, first_enqueued: dict[str, int]) -> None:
    state = await read_state(redis, tenant, [q.name for q in QUEUES])
    problems = check_all(state, first_enqueued)
    assert not problems, "\n".join(problems)


async def timers_of(router: Router, conversation_id: str) -> dict[str, int]:
    raw = await router.redis.zrange(router.keys.timers, 0, -1, withscores=True)
    found = {}
    for member, due in raw:
        kind, _, conv = member.decode().partition("|")
        if conv == conversation_id:
            found[kind] = int(due)
    return found


async def test_a_waiting_conversation_moves_with_its_enqueue_time_and_place_in_order(redis, tenant):
    router, presence = await start(redis, tenant)
    old_calm = await arrive(router, "ann", NOW)
    edited = await arrive(router, "bob", NOW + 10)
    angry = await arrive(router, "cy", NOW + 20, ANGRY)
    later_angry = await arrive(router, "di", NOW + 30, ANGRY)

    got = await router.replace(edited, ANGRY, NOW + 1_000)

    assert got == Replaced(moved=True, state="queued", from_queue="general", to_queue="complaints")
    # Same priority as the complaints that came after it: ahead of them, by its enqueue time.
    assert await router.waiting("complaints") == [edited, angry, later_angry]
    assert await router.waiting("general") == [old_calm]
    route = await router.route(edited)
    assert route is not None
    assert (route.queue, route.priority, route.enqueued_ms) == ("complaints", 8, NOW + 10)
    assert (route.skills, route.grade, route.sla_s) == ({"complaint": 2}, "A", 600)
    score = await redis.zscore(router.keys.queue("complaints"), edited)
    assert score == queue_score(8, NOW + 10)
    conversation = await router.conversation(edited)
    assert conversation is not None
    assert (conversation.queue, conversation.priority, conversation.grade) == ("complaints", 8, "A")
    assert conversation.sla_s == 600
    enqueued = {old_calm: NOW, edited: NOW + 10, angry: NOW + 20, later_angry: NOW + 30}
    await assert_invariants(redis, tenant, enqueued)

    # The agent is offered it first, before the older calm one too.
    await presence.set_status("alice", "available")
    [offer] = await router.dispatch(NOW + 2_000)
    assert (offer.conversation_id, offer.queue, offer.enqueued_ms) == (
        edited,
        "complaints",
        NOW + 10,
    )


async def test_both_ways_back_to_the_normal_queue(redis, tenant):
    router, _ = await start(redis, tenant)
    first = await arrive(router, "ann", NOW)
    edited = await arrive(router, "bob", NOW + 10)
    third = await arrive(router, "cy", NOW + 20)
    await router.replace(edited, ANGRY, NOW + 100)
    assert await router.waiting("general") == [first, third]

    got = await router.replace(edited, CALM, NOW + 200)

    assert got == Replaced(moved=True, state="queued", from_queue="complaints", to_queue="general")
    assert await router.waiting("general") == [first, edited, third]
    assert await router.waiting("complaints") == []
    route = await router.route(edited)
    assert route is not None
    assert (route.queue, route.priority, route.enqueued_ms) == ("general", 0, NOW + 10)
    # The complaint's skills, grade and SLA went with it: the queue's own apply again.
    stored = await stored_route(redis, router, edited)
    assert not {"s", "g", "sla"} & set(stored), stored
    await assert_invariants(redis, tenant, {first: NOW, edited: NOW + 10, third: NOW + 20})


@pytest.mark.parametrize("state", ["offered", "assigned", "closed"])
async def test_a_conversation_no_longer_waiting_is_not_moved(redis, tenant, state):
    router, _ = await start(redis, tenant, available=True)
    conv = await arrive(router, "ann", NOW)
    [offer] = await router.dispatch(NOW + 1)
    if state == "assigned":
        await router.accept(offer.offer_id or "", "alice", NOW + 2)
    elif state == "closed":
        await router.close(conv, None, NOW + 2)
    before = await read_state(redis, tenant, [q.name for q in QUEUES])

    got = await router.replace(conv, ANGRY, NOW + 3)

    queue = None if state == "closed" else "general"
    assert got == Replaced(moved=False, state=state, from_queue=queue, to_queue=queue)
    after = await read_state(redis, tenant, [q.name for q in QUEUES])
    assert after.routes[conv] == before.routes[conv]
    assert after.states[conv] == state
    assert after.queues == before.queues and after.conv_timers == before.conv_timers


async def test_an_unknown_conversation_is_reported_closed_and_an_unknown_queue_refused(
    redis, tenant
):
    router, _ = await start(redis, tenant)
    assert await router.replace("c-nothing", ANGRY, NOW) == Replaced(moved=False, state="closed")
    conv = await arrive(router, "ann", NOW)
    with pytest.raises(RoutingError) as refusal:
        await router.replace(conv, Placement(queue="nowhere", priority=1), NOW + 1)
    assert refusal.value.code == "unknown_queue"
    assert await router.waiting("general") == [conv]


ESCALATING = [
    QueueConfig(name="general", channels=["webchat"], max_wait_s=60, after_max_wait="auto_reply"),
    QueueConfig(
        name="complaints",
        skills={"complaint": 3},
        priority=6,
        ageing_s=20,
        max_wait_s=120,
        after_max_wait="auto_reply",
        escalation=[
            EscalationStep(after_s=30, skills={"complaint": 2}),
            EscalationStep(after_s=90, raise_priority=1),
        ],
    ),
]


async def test_the_new_queues_timers_count_from_the_original_enqueue_time(redis, tenant):
    router, _ = await start(redis, tenant, ESCALATING)
    conv = await arrive(router, "ann", NOW)
    assert await timers_of(router, conv) == {"max": NOW + 60_000}

    got = await router.replace(conv, Placement(queue="complaints", priority=6), NOW + 50_000)

    assert got.moved
    # Two ageing steps earned in 50 s; the next one at 60 s. The escalation step due at 30 s
    # comes at the next sweep; the maximum wait, still to come, is the new queue's.
    route = await router.route(conv)
    assert route is not None and (route.priority, route.enqueued_ms) == (8, NOW)
    assert await redis.zscore(router.keys.queue("complaints"), conv) == queue_score(8, NOW)
    assert await timers_of(router, conv) == {
        "esc": NOW + 30_000,
        "age": NOW + 60_000,
        "max": NOW + 120_000,
    }
    events = await router.fire_timers(NOW + 50_001)
    assert [(e.kind, e.detail) for e in events] == [("escalated", "1")]
    route = await router.route(conv)
    assert route is not None and route.skills == {"complaint": 2}


async def test_a_maximum_wait_that_came_does_not_come_again(redis, tenant):
    router, _ = await start(redis, tenant, ESCALATING)
    conv = await arrive(router, "ann", NOW)
    events = await router.fire_timers(NOW + 60_000)
    assert [(e.kind, e.conversation_id) for e in events] == [("max_wait", conv)]
    await router.replace(conv, Placement(queue="complaints", priority=6), NOW + 61_000)
    assert "max" not in await timers_of(router, conv)


async def test_a_placement_on_the_same_basis_changes_nothing(redis, tenant):
    router, _ = await start(redis, tenant, ESCALATING)
    conv = await arrive(router, "ann", NOW, Placement(queue="complaints", priority=6, basis="b"))
    await router.fire_timers(NOW + 31_000)  # the first escalation step, and ageing: 7
    before = await read_state(redis, tenant, [q.name for q in QUEUES])
    assert before.routes[conv]["es"] == 1 and before.routes[conv]["p"] == 7

    same = Placement(queue="complaints", priority=6, basis="b")
    got = await router.replace(conv, same, NOW + 45_000)

    assert got == Replaced(
        moved=False, state="queued", from_queue="complaints", to_queue="complaints"
    )
    after = await read_state(redis, tenant, [q.name for q in QUEUES])
    assert after.routes == before.routes and after.queues == before.queues
    assert after.conv_timers == before.conv_timers
    # Another basis places it afresh, in the same queue: the steps start over.
    other = Placement(queue="complaints", priority=9, grade="A", basis="c")
    got = await router.replace(conv, other, NOW + 46_000)
    assert got == Replaced(
        moved=True, state="queued", from_queue="complaints", to_queue="complaints"
    )
    route = await stored_route(redis, router, conv)
    assert (route["p"], route["g"], route["pb"]) == (9, "A", "c") and "es" not in route
