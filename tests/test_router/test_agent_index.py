"""The agent index (presence/lua/_index.lua, docs/design.md "The agent index"): rebuilt when
the configuration changes without a moment in which an agent is offered work they cannot
take, and a routing decision whose work inside Redis does not grow with the agents online."""

from __future__ import annotations

import pytest
from test_router.index_check import check_agent_index
from test_router.invariants import read_state
from test_router.test_timers_and_preferences import NOW, arrive, start

from router.config import QueueConfig


def billing(strategy: str = "least_loaded") -> QueueConfig:
    return QueueConfig(name="billing", skills={"billing": 3}, strategy=strategy)


async def index_problems(redis, tenant) -> list[str]:
    return check_agent_index(await read_state(redis, tenant))


async def test_changed_skills_are_never_offered_before_the_rebuild_and_are_after(redis, tenant):
    before = [
        {"id": "alice", "skills": {"billing": 3}, "capacity": {"webchat": 1}},
        {"id": "bob", "skills": {"billing": 1}, "capacity": {"webchat": 1}},
    ]
    router, presence = await start(redis, tenant, before, [billing()])
    assert await index_problems(redis, tenant) == []
    conv = await arrive(router, "v1", "billing", NOW)
    # The restart has published the new skills but not yet rebuilt the index: alice, still
    # in the billing pool, no longer has the skill; bob, not in it yet, now has.
    await redis.hset(presence.keys.skills, mapping={"alice": '{"billing": 1}'})
    await redis.hset(presence.keys.skills, mapping={"bob": '{"billing": 3}'})
    assert await router.dispatch(NOW) == []
    assert (await router.conversation(conv)).state == "queued"
    after = [
        {"id": "alice", "skills": {"billing": 1}, "capacity": {"webchat": 1}},
        {"id": "bob", "skills": {"billing": 3}, "capacity": {"webchat": 1}},
    ]
    router, presence = await start(redis, tenant, after, [billing()])
    assert await index_problems(redis, tenant) == []
    [offer] = await router.dispatch(NOW + 1)
    assert (offer.conversation_id, offer.agent) == (conv, "bob")


async def test_capacity_taken_away_is_never_offered_before_the_rebuild(redis, tenant):
    agents = [{"id": "alice", "skills": {"billing": 3}, "capacity": {"webchat": 1}}]
    router, presence = await start(redis, tenant, agents, [billing()])
    conv = await arrive(router, "v1", "billing", NOW)
    await redis.hset(presence.keys.capacity, "alice|webchat", 0)
    assert await router.dispatch(NOW) == []
    agents[0]["capacity"] = {"webchat": 0, "email": 1}
    router, presence = await start(redis, tenant, agents, [billing()])
    assert await index_problems(redis, tenant) == []
    assert await router.dispatch(NOW + 1) == []
    assert (await router.conversation(conv)).state == "queued"


async def test_a_queue_added_gets_its_pool_at_the_restart(redis, tenant):
    agents = [
        {"id": "alice", "skills": {"billing": 3}, "capacity": {"webchat": 1}},
        {"id": "carol", "skills": {"vip": 2}, "capacity": {"webchat": 1}},
    ]
    await start(redis, tenant, agents, [billing()])
    vip = QueueConfig(name="vip", skills={"vip": 2}, strategy="longest_idle")
    router, _ = await start(redis, tenant, agents, [billing(), vip])
    assert await index_problems(redis, tenant) == []
    conv = await arrive(router, "v1", "vip", NOW)
    [offer] = await router.dispatch(NOW)
    assert (offer.conversation_id, offer.agent) == (conv, "carol")
    assert await index_problems(redis, tenant) == []


async def commands_per_decision(redis, tenant: str, agents: int, strategy: str) -> int:
    """How many commands Redis runs, scripts' included, for one decision with `agents`
    available agents with room, of whom the first half lacks the queue's skill."""
    configs = [
        {"id": f"a{i:05d}", "skills": {"billing": 3 if i >= agents // 2 else 1},
         "capacity": {"webchat": 2}}
        for i in range(agents)
    ]  # fmt: skip
    router, _ = await start(redis, tenant, configs, [billing(strategy)])
    await arrive(router, "v1", "billing", NOW)
    await redis.config_resetstat()
    made = await router.dispatch(NOW)
    stats = await redis.info("commandstats")
    assert len(made) == 1
    # The commands that carry the call (the script itself) and read the statistics.
    outside = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_info", "cmdstat_config"}
    return sum(v["calls"] for name, v in stats.items() if name not in outside)


@pytest.mark.parametrize("strategy", ["least_loaded", "longest_idle", "round_robin"])
async def test_a_decision_does_not_look_at_every_agent(redis, tenant, strategy):
    few = await commands_per_decision(redis, f"{tenant}-few", 10, strategy)
    many = await commands_per_decision(redis, f"{tenant}-many", 1_000, strategy)
    assert many == few, f"{few} commands with 10 agents available, {many} with 1,000"
