"""The wallboard: the lead's queues and agents, built from the same snapshots and views as
GET /api/queues and /api/agents (gateway/admin/snapshots.py, views.py), so that a number on
the wallboard is the number the admin API gives; only the split of a queue's available
agents into those with room and those full, and the 15-minute SLA record, are added here.

Every lead's socket on a process is woken by the same change; SharedReads lets them build
their wallboards from one read of Redis instead of one each."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from gateway.admin.snapshots import AgentSnapshot, QueueSnapshot, snapshot_agents, snapshot_queues
from gateway.admin.views import AgentView, QueueView, agent_views, queue_views
from gateway.services import Services
from gateway.supervisors.protocol import AgentTile, QueueTile, Wallboard
from gateway.supervisors.scope import Scope
from router.eligibility import TOTAL, share

NOT_READY = ("available", "offline")
SHARED_FOR_S = 1.0  # the longest a read is shared when nothing changed: ages must advance


class Reads:
    def __init__(
        self, queues: QueueSnapshot, agents: AgentSnapshot, sla: dict[str, tuple[int, int]]
    ) -> None:
        self.queues, self.agents, self.sla = queues, agents, sla


async def read_now(services: Services) -> Reads:
    queues = await snapshot_queues(services, limit=0)
    agents = await snapshot_agents(services)
    names = [q.name for q in services.config.queues]
    return Reads(queues, agents, await services.router.recent_sla(names, queues.now_ms))


class SharedReads:
    """The process's latest read for wallboards, shared while it is still true: no change
    told to the tap since it started (the tap's generation), and at most SHARED_FOR_S old.
    Sockets that ask while a read is under way wait for it."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._lock = asyncio.Lock()
        self._latest: tuple[int, float, Reads] | None = None

    async def read(self) -> Reads:
        tap = self.services.switchboard.tap
        async with self._lock:
            latest = self._latest
            if (
                latest is not None
                and latest[0] == tap.generation
                and time.monotonic() - latest[1] < SHARED_FOR_S
            ):
                return latest[2]
            # The generation before reading: a change told during the read makes it stale.
            generation, started = tap.generation, time.monotonic()
            reads = await read_now(self.services)
            self._latest = (generation, started, reads)
            return reads


WALLBOARD_READS = web.AppKey("wallboard_reads", SharedReads)


class StatusSince:
    """When this socket first saw each agent's current status: the wallboard's since_ms.
    Presence keeps no such time, so it starts unknown (None) and is known from the first
    change seen."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, int | None]] = {}

    def since(self, agent: str, status: str, now_ms: int) -> int | None:
        previous = self._seen.get(agent)
        if previous is None:
            since = None
        elif previous[0] != status:
            since = now_ms
        else:
            since = previous[1]
        self._seen[agent] = (status, since)
        return since


def _queue_tile(
    services: Services,
    view: QueueView,
    agents: dict[str, AgentView],
    sla: tuple[int, int],
) -> QueueTile:
    queue = services.switchboard.placer.queues[view.name]
    available = busy = 0
    for agent in services.config.agents:
        shown = agents.get(agent.id)
        if shown is None or shown.status != "available":
            continue
        load = {**shown.load, TOTAL: sum(shown.load.values())}
        part = share(agent, queue, load)
        if part is None:
            continue
        if part.room:
            available += 1
        else:
            busy += 1
    answered, met = sla
    return QueueTile(
        name=view.name,
        depth=view.depth,
        oldest_wait_s=view.oldest_wait_s,
        sla_met_15m=round(met / answered, 4) if answered else None,
        sla_answered_15m=answered,
        available=available,
        busy=busy,
        # The admin API's own counts of the queue's eligible agents, by status.
        away=sum(n for status, n in view.agents.items() if status not in NOT_READY),
    )


async def build_wallboard(
    services: Services, scope: Scope, since: StatusSince, shared: SharedReads | None = None
) -> Wallboard:
    reads = await (shared.read() if shared is not None else read_now(services))
    queue_snap, agent_snap, sla = reads.queues, reads.agents, reads.sla
    queues = [v for v in queue_views(services, queue_snap) if scope.sees_queue(v.name)]
    agents = {v.id: v for v in agent_views(services, agent_snap) if scope.sees_agent(v.id)}
    now = agent_snap.now_ms
    return Wallboard(
        at_ms=now,
        queues=[_queue_tile(services, view, agents, sla[view.name]) for view in queues],
        agents=[
            AgentTile(
                id=view.id,
                name=view.name,
                status=view.status,
                reason=view.status_reason,
                since_ms=since.since(view.id, view.status, now),
                load=view.load,
                capacity=view.capacity,
                conversations=view.conversations,
            )
            for view in agents.values()
        ],
    )
