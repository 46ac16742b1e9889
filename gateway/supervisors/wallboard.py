"""The wallboard: the lead's queues and agents, built from the same snapshots and views as
GET /api/queues and /api/agents (gateway/admin/snapshots.py, views.py), so that a number on
the wallboard is the number the admin API gives; only the split of a queue's available
agents into those with room and those full, and the 15-minute SLA record, are added here."""

from __future__ import annotations

from gateway.admin.snapshots import snapshot_agents, snapshot_queues
from gateway.admin.views import AgentView, QueueView, agent_views, queue_views
from gateway.services import Services
from gateway.supervisors.protocol import AgentTile, QueueTile, Wallboard
from gateway.supervisors.scope import Scope
from router.eligibility import TOTAL, share

NOT_READY = ("available", "offline")


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


async def build_wallboard(services: Services, scope: Scope, since: StatusSince) -> Wallboard:
    queue_snap = await snapshot_queues(services, limit=0)
    agent_snap = await snapshot_agents(services)
    queues = [v for v in queue_views(services, queue_snap) if scope.sees_queue(v.name)]
    agents = {v.id: v for v in agent_views(services, agent_snap) if scope.sees_agent(v.id)}
    sla = await services.router.recent_sla([q.name for q in queues], queue_snap.now_ms)
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
