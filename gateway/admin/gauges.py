"""The gauges /metrics refreshes from Redis on every scrape: queue depth and oldest wait,
agents by status, each queue's occupancy and available agents, customer sockets. Read from
Redis rather than kept by the process, so that every process reports the same truth."""

from __future__ import annotations

import json

from gateway.admin.snapshots import per_agent
from gateway.services import Services
from presence.agents import AgentSpec
from presence.registry import BUILT_IN_STATUSES
from router.eligibility import TOTAL, share
from router.reads import text


async def refresh_gauges(services: Services) -> None:
    """Figures every process reads from Redis, so all report the same truth."""
    metrics = services.metrics
    channels = {c for q in services.config.queues for c in q.channels} | set(services.adapters)
    metrics.prime(services.router.queues, channels, services.adapters)
    now_ms = services.switchboard.clock()
    for queue, stats in (await services.router.queue_stats()).items():
        metrics.queue_depth.labels(queue).set(stats.depth)
        oldest = stats.oldest_enqueued_ms
        metrics.queue_oldest_wait.labels(queue).set(
            0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000)
        )
    statuses = await services.presence.statuses()
    # Every status an agent can choose is reported, 0 included, so that a status nobody is
    # in any more drops to 0 instead of keeping its last value.
    counts = dict.fromkeys((*BUILT_IN_STATUSES, *services.config.routing.not_ready_reasons), 0)
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    for status, count in counts.items():
        metrics.agents.labels(status).set(count)
    await _refresh_occupancy(services, statuses)
    customers = sum(a.open_connections() for a in services.adapters.values())
    metrics.websockets.labels("customer").set(customers)


async def _refresh_occupancy(services: Services, statuses: dict[str, str]) -> None:
    """Per queue: the eligible connected agents' load over their capacity on the queue's
    channels, and how many of them are available (eligible as router/eligibility.py says).
    Three HGETALLs of per-tenant hashes, whatever the number of queues."""
    keys = services.presence.keys
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.skills)
        pipe.hgetall(keys.capacity)
        pipe.hgetall(keys.load)
        raw_skills, raw_capacity, raw_load = await pipe.execute()
    skills = {text(a): json.loads(s) for a, s in raw_skills.items()}
    capacity, load = per_agent(raw_capacity), per_agent(raw_load)
    connected = [
        AgentSpec(
            id=agent,
            skills=skills.get(agent, {}),
            capacity={c: n for c, n in capacity.get(agent, {}).items() if c != TOTAL},
            max_total=capacity.get(agent, {}).get(TOTAL),
        )
        for agent, status in statuses.items()
        if status != "offline"
    ]
    metrics = services.metrics
    for name, queue in services.router.queues.items():
        metrics.queue_sla.labels(name).set(queue.sla_s)
        used = total = available = 0
        for agent in connected:
            part = share(agent, queue, load.get(agent.id, {}))
            if part is None:
                continue
            used += part.load
            total += part.capacity
            available += statuses.get(agent.id) == "available"
        metrics.load_ratio.labels(name).set(used / total if total else 0.0)
        metrics.queue_available_agents.labels(name).set(available)
