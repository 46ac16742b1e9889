"""A graded complaint's reminders and deadlines across two gateway processes (`zhongtai
serve` subprocesses on one Redis), both sweeping the timers: the customer writes to one, the
agent and the lead are on the other; each reminder and each missed deadline reaches them
once (the counters of both processes add up to one), and the process the customer wrote to
is killed with SIGKILL before the resolution deadline, which the other still fires."""

from __future__ import annotations

import time
from datetime import datetime

import redis.asyncio as aioredis
from harness import GatewayProcess, connect
from obs_support import scrape_text
from prometheus_client.parser import text_string_to_metric_families

CONFIG = """
[[agents]]
id = "alice"
token = "tok-alice"
capacity = { webchat = 2 }

[[queues]]
name = "general"
channels = ["webchat"]
auto_accept = true

[[grades]]
name = "A"
priority = 5
sla_s = 30.0
first_response_s = 3.0
resolve_s = 8.0
remind_before_s = 1.5
on_deadline = { action = "notify_leads" }

[[rules]]
name = "投诉"
keywords = ["投诉"]
grade = "A"

[[supervisors]]
id = "gail"
token = "tok-gail"
queues = ["general"]

[routing]
sweep_interval_s = 0.05

[webchat]
messages_per_minute = 0
new_visitors_per_minute = 0
"""


async def counted(node: GatewayProcess, name: str, **labels: str) -> float:
    text = await scrape_text(f"http://127.0.0.1:{node.admin_port}")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


async def test_deadlines_fire_once_across_processes_and_survive_a_kill(tmp_path, tenant, redis_url):
    one = GatewayProcess(tmp_path, tenant, redis_url, "node-1", CONFIG)
    two = GatewayProcess(tmp_path, tenant, redis_url, "node-2", CONFIG)
    try:
        await one.ready()
        await two.ready()
        async with (
            connect(two.ws_url("/agent/ws")) as alice,
            connect(two.ws_url("/supervisor/ws")) as gail,
            connect(one.ws_url("/webchat/ws")) as visitor,
        ):
            await alice.send(type="hello", token="tok-alice", protocol=1)
            await alice.expect("welcome")
            await gail.send(type="hello", token="tok-gail", protocol=1)
            await gail.expect("welcome")
            await visitor.send(type="hello")
            await visitor.expect("welcome")
            await visitor.send(type="message", text="我要投诉")
            assigned = await alice.expect("assigned", timeout=15)
            due = {
                d["kind"]: datetime.fromisoformat(d["due_at"]).timestamp()
                for d in assigned["conversation"]["deadlines"]
            }

            for frame_from in (alice, gail):
                await frame_from.expect("deadline", timeout=15, stage="reminder")
                missed = await frame_from.expect("deadline", timeout=15, stage="missed")
                assert missed["deadline"] == "first_response"
                assert missed["action"] == "notify_leads"
            assert time.time() >= due["first_response"]
            first = {"deadline": "first_response"}
            reminders = [
                await counted(n, "zhongtai_complaint_reminders_total", **first) for n in (one, two)
            ]
            misses = [
                await counted(n, "zhongtai_complaint_deadlines_missed_total", **first)
                for n in (one, two)
            ]
            assert (sum(reminders), sum(misses)) == (1, 1)

            one.kill()  # SIGKILL: the customer's process, which may have been the sweeper
            killed_at = time.time()
            for frame_from in (alice, gail):
                reminder = await frame_from.expect("deadline", timeout=20, stage="reminder")
                assert reminder["deadline"] == "resolve"
                missed = await frame_from.expect("deadline", timeout=20, stage="missed")
                assert missed["deadline"] == "resolve"
            assert time.time() >= due["resolve"]
            resolve = {"deadline": "resolve"}
            if killed_at < due["resolve"] - 1.5:
                # Both fell due after the kill: the survivor fired them.
                assert await counted(two, "zhongtai_complaint_reminders_total", **resolve) == 1
            assert await counted(two, "zhongtai_complaint_deadlines_missed_total", **resolve) == 1

        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            timers = await client.zrange(f"zt:{{{tenant}}}:timers:conv", 0, -1)
        finally:
            await client.aclose()
        assert not [t for t in timers if t.split("|")[0].endswith(("_remind", "_due"))]
        assert await two.stop() == 0
    finally:
        one.kill()
        two.kill()
