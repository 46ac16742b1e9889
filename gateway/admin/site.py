"""The admin site on its own port: /metrics, /healthz, /readyz."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.admin.api import add_api_routes
from gateway.observability.instrument import ErrorCounter
from gateway.services import SERVICES, Services
from presence.agents import AgentSpec
from presence.registry import BUILT_IN_STATUSES
from router.eligibility import TOTAL, share

log = logging.getLogger(__name__)

MAIN_APP = web.AppKey("main_app", web.Application)


def _services(request: web.Request) -> Services:
    return request.app[MAIN_APP][SERVICES]


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


def _per_agent(raw: dict[Any, Any]) -> dict[str, dict[str, int]]:
    """{"agent|channel": n} hashes as {agent: {channel: n}}; "*" is the agent's total."""
    found: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        agent, _, channel = _text(field).rpartition("|")
        found.setdefault(agent, {})[channel] = int(value)
    return found


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
    skills = {_text(a): json.loads(s) for a, s in raw_skills.items()}
    capacity, load = _per_agent(raw_capacity), _per_agent(raw_load)
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def metrics_handler(request: web.Request) -> web.Response:
    services = _services(request)
    try:
        await refresh_gauges(services)
    except Exception as exc:
        # Serve the process's own counters even when Redis is away; the gauges keep their
        # last values and /readyz reports the outage.
        log.warning("metrics: could not read Redis: %s", exc)
    body = generate_latest(services.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = _services(request)
    problems = []
    if not services.started:
        problems.append("starting")
    else:
        timeout_s = services.config.redis.socket_timeout_s
        try:
            # A hung Redis must make the probe answer 503 in time, not hang the probe.
            await asyncio.wait_for(services.redis.ping(), timeout=timeout_s)
        except TimeoutError:
            problems.append(f"redis: no answer within {timeout_s} s")
        except Exception as exc:
            problems.append(f"redis: {exc}")
        if not services.bus.subscribed.is_set():
            problems.append("node subscription down")
        for name, adapter in services.adapters.items():
            try:
                if not await adapter.ready():
                    problems.append(f"adapter {name} not ready")
            except Exception as exc:
                problems.append(f"adapter {name}: {exc}")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready", "node": services.node_id})


def build_admin_app(main_app: web.Application) -> web.Application:
    admin = web.Application()
    admin[MAIN_APP] = main_app
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz)
    admin.router.add_get("/readyz", readyz)
    add_api_routes(admin)
    admin.cleanup_ctx.append(_count_logged_errors)
    return admin


async def _count_logged_errors(admin: web.Application) -> AsyncIterator[None]:
    """zhongtai_errors_logged_total: a handler on the root logger while the app runs."""
    counter = ErrorCounter(_services_of(admin).metrics)
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield
    finally:
        root.removeHandler(counter)


def _services_of(admin: web.Application) -> Services:
    return admin[MAIN_APP][SERVICES]
