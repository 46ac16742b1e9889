"""A graded complaint's deadlines on a virtual clock, through the Router: reminders and
deadlines fire once, in order; the grade's action (raise the priority, move to a queue) is
applied in the script; the first reply cancels the first-response timers and a close all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, parse_config, with_defaults
from gateway.config_errors import ConfigError
from presence.registry import Presence
from router.config import GradeConfig, OnDeadline, QueueConfig
from router.engine import Router
from router.events import decode_entry
from router.ids import new_id
from router.results import Placement

NOW = 1_800_000_000_000


def grade(**fields) -> GradeConfig:
    base = {"name": "A", "priority": 5, "sla_s": 30.0, "first_response_s": 10.0}
    return GradeConfig(**{**base, **fields})


async def start(redis, tenant):
    core = with_defaults(
        CoreConfig(
            agents=[AgentConfig(id="alice", token="x", capacity={"webchat": 2})],
            queues=[QueueConfig(name="general"), QueueConfig(name="senior")],
        )
    )
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    presence = Presence(redis, tenant)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    return router, presence


async def complaint(router, who: str, at: int, graded: GradeConfig) -> str:
    sent = datetime.fromtimestamp(at / 1000, UTC)
    message = Message(id=new_id("m", at), direction="in", text="投诉", sent_at=sent)
    placement = Placement(queue="general", priority=5, grade=graded.name, grade_config=graded)
    result = await router.ingest(
        "webchat", "default", f"{who}-{at}", Customer(id=who), message, at, placement
    )
    return result.conversation_id


def fired(events) -> list[tuple[str, str, str]]:
    return [(e.kind, e.conversation_id, e.detail) for e in events]


async def test_reminder_then_deadline_raise_priority_once(redis, tenant):
    router, _ = await start(redis, tenant)
    graded = grade(remind_before_s=4.0, on_deadline=OnDeadline(action="raise_priority", priority=9))
    conv = await complaint(router, "ann", NOW, graded)
    assert await router.fire_timers(NOW + 5_999) == []
    assert fired(await router.fire_timers(NOW + 6_000)) == [
        ("complaint_reminder", conv, "first_response")
    ]
    [view] = (await router.conversation(conv)).deadlines
    assert (view.kind, view.state) == ("first_response", "reminded")
    assert view.due_at == datetime.fromtimestamp((NOW + 10_000) / 1000, UTC)
    assert fired(await router.fire_timers(NOW + 10_000)) == [
        ("complaint_deadline", conv, "first_response|raise_priority")
    ]
    assert await router.fire_timers(NOW + 60_000) == []
    after = await router.conversation(conv)
    assert after.priority == 9
    assert [d.state for d in after.deadlines] == ["missed"]
    # Rescored in its queue: a priority-9 conversation stands first.
    assert await redis.zscore(router.keys.queue("general"), conv) == NOW
    # Each written to the event stream once, by the timer that fired it.
    events = [decode_entry(i, f) for i, f in await redis.xrange(router.keys.events)]
    complaint_events = [(e.type, e.occurred_at, e.data) for e in events if "complaint" in e.type]
    assert complaint_events == [
        (
            "complaint_reminder",
            NOW + 6_000,
            {"deadline": "first_response", "grade": graded.name, "queue": "general"},
        ),
        (
            "complaint_deadline_missed",
            NOW + 10_000,
            {
                "deadline": "first_response",
                "grade": graded.name,
                "queue": "general",
                "action": "raise_priority",
            },
        ),
    ]


async def test_move_to_queue_while_waiting(redis, tenant):
    router, _ = await start(redis, tenant)
    graded = grade(
        remind_before_s=0.0, on_deadline=OnDeadline(action="move_to_queue", queue="senior")
    )
    conv = await complaint(router, "bob", NOW, graded)
    assert fired(await router.fire_timers(NOW + 10_000)) == [
        ("complaint_deadline", conv, "first_response|move_to_queue")
    ]
    assert (await router.conversation(conv)).queue == "senior"
    assert await redis.zscore(router.keys.queue("general"), conv) is None
    assert await redis.zscore(router.keys.queue("senior"), conv) is not None


async def test_move_to_queue_of_a_held_conversation_asks_the_caller_until_it_moves(redis, tenant):
    router, presence = await start(redis, tenant)
    await presence.connect("alice", "node-1", "conn-alice", "available")
    graded = grade(
        remind_before_s=0.0, on_deadline=OnDeadline(action="move_to_queue", queue="senior")
    )
    conv = await complaint(router, "cat", NOW, graded)
    [offer] = await router.dispatch(NOW + 1)
    await router.accept(offer.offer_id, "alice", NOW + 2)
    assert fired(await router.fire_timers(NOW + 10_000)) == [
        ("complaint_deadline", conv, "first_response|transfer")
    ]
    # The caller did not transfer it (a process killed, say): asked again, not counted again.
    assert fired(await router.fire_timers(NOW + 16_000)) == [
        ("complaint_transfer", conv, "first_response|senior")
    ]
    await router.transfer(conv, None, NOW + 16_001, to_queue="senior")
    assert await router.fire_timers(NOW + 30_000) == []


async def test_first_reply_cancels_first_response_and_close_cancels_all(redis, tenant):
    router, presence = await start(redis, tenant)
    await presence.connect("alice", "node-1", "conn-alice", "available")
    graded = grade(remind_before_s=2.0, resolve_s=20.0)
    conv = await complaint(router, "dan", NOW, graded)
    [offer] = await router.dispatch(NOW + 1)
    await router.accept(offer.offer_id, "alice", NOW + 2)
    reply = Message(
        id=new_id("m", NOW + 3),
        direction="out",
        text="您好",
        sent_at=datetime.fromtimestamp((NOW + 3) / 1000, UTC),
    )
    await router.add_reply(conv, "alice", "r1", reply, NOW + 3)
    states = {d.kind: d.state for d in (await router.conversation(conv)).deadlines}
    assert states == {"first_response": "met", "resolve": "pending"}
    assert fired(await router.fire_timers(NOW + 18_000)) == [
        ("complaint_reminder", conv, "resolve")
    ]
    await router.close(conv, "alice", NOW + 19_000)
    assert await router.fire_timers(NOW + 60_000) == []
    states = {d.kind: d.state for d in (await router.conversation(conv)).deadlines}
    assert states == {"first_response": "met", "resolve": "met"}


@pytest.mark.parametrize(
    ("grade_fields", "key", "problem"),
    [
        ({"on_deadline": {"action": "raise_priority"}}, "on_deadline.priority", "priority"),
        ({"on_deadline": {"action": "move_to_queue"}}, "on_deadline.queue", "queue"),
        (
            {"on_deadline": {"action": "move_to_queue", "queue": "nowhere"}},
            "on_deadline.queue",
            "'nowhere'",
        ),
        ({"first_response_s": 60, "resolve_s": 30}, "resolve_s", "first_response_s"),
    ],
)
def test_a_grades_deadlines_are_checked_and_named(grade_fields, key, problem):
    grades = [{"name": "A", "priority": 9, "sla_s": 30, **grade_fields}]
    with pytest.raises(ConfigError) as raised:
        parse_config({"queues": [{"name": "q"}], "grades": grades}, "z.toml", {}, env={})
    assert (raised.value.table, raised.value.key) == ('grades "A"', key)
    assert problem in raised.value.problem


def test_an_unknown_action_is_refused_naming_it():
    grades = [{"name": "A", "priority": 9, "sla_s": 30, "on_deadline": {"action": "panic"}}]
    with pytest.raises(ConfigError) as raised:
        parse_config({"queues": [{"name": "q"}], "grades": grades}, "z.toml", {}, env={})
    assert "on_deadline.action" in str(raised.value)


async def test_raise_priority_in_a_queue_closed_now_rescores_once_it_opens(redis, tenant):
    router, _ = await start(redis, tenant)
    graded = grade(remind_before_s=0.0, on_deadline=OnDeadline(action="raise_priority", priority=9))
    conv = await complaint(router, "eve", NOW, graded)
    closed_now: list[str] = ["senior"]  # general is closed at the deadline
    assert fired(await router.fire_timers(NOW + 10_000, closed_now)) == [
        ("complaint_deadline", conv, "first_response|raise_priority")
    ]
    assert (await router.conversation(conv)).priority == 9
    assert await redis.zscore(router.keys.queue("general"), conv) != NOW
    # Open again: the leased timer puts it in its place, and says nothing more.
    assert await router.fire_timers(NOW + 16_000) == []
    assert await redis.zscore(router.keys.queue("general"), conv) == NOW
    assert await router.fire_timers(NOW + 60_000) == []


async def test_an_edit_that_makes_a_complaint_starts_its_deadlines_from_the_edit(redis, tenant):
    router, _ = await start(redis, tenant)
    sent = datetime.fromtimestamp(NOW / 1000, UTC)
    calm = Message(id=new_id("m", NOW), direction="in", text="five stars", sent_at=sent)
    result = await router.ingest(
        "webchat", "default", "rev-1", Customer(id="fay"), calm, NOW,
        Placement(queue="general", priority=0),
    )  # fmt: skip
    conv = result.conversation_id
    assert (await router.conversation(conv)).deadlines == []
    graded = grade(remind_before_s=0.0)
    angry = Placement(queue="general", priority=5, grade="A", grade_config=graded, basis="a")
    assert (await router.replace(conv, angry, NOW + 60_000)).moved
    assert await router.start_deadlines(conv, graded, NOW + 60_000)
    # Counted from the edit; a second edit keeps the deadlines the first started.
    assert not await router.start_deadlines(conv, graded, NOW + 70_000)
    [view] = (await router.conversation(conv)).deadlines
    assert view.due_at == datetime.fromtimestamp((NOW + 70_000) / 1000, UTC)
    assert await router.fire_timers(NOW + 69_999) == []
    assert fired(await router.fire_timers(NOW + 70_000)) == [
        ("complaint_deadline", conv, "first_response|notify_leads")
    ]
    await router.close(conv, None, NOW + 80_000)
    assert not await router.start_deadlines(conv, graded, NOW + 90_000)
