"""What the admin views are built from, read from Redis once per answer. Kept apart from
views.py so that the views are pure functions of a snapshot: whoever shows the same numbers
as the admin API (the supervisors' wallboard) reads the same snapshot and builds the same
views, without a request."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from adapters.model import Conversation
from gateway.config import AgentConfig
from gateway.services import Services
from router.eligibility import TOTAL
from router.reads import text
from router.results import QueueStats
from router.route import Route

DEFAULT_WAITING_LIMIT = 10  # how many of a queue's waiting conversations its view lists

Offer = tuple[str, str, str, int]  # (offer id, conversation, agent, due ms) of a pending offer


class QueueSnapshot(msgspec.Struct, kw_only=True):
    now_ms: int
    open_queues: set[str]  # open by their hours at now_ms
    stats: dict[str, QueueStats]
    statuses: dict[str, str]  # every known agent's status
    waiting: dict[str, list[tuple[str, Route]]]  # queue -> its first conversations, in order
    accepts: dict[str, list[int]]  # queue -> recent accept times in ms, newest first
    # For the waiting ones' waiting_reason (router/waiting.py): agents' loads (agent ->
    # channel, "*" included -> n), and who declined each (conversation -> agent -> ms).
    loads: dict[str, dict[str, int]] = {}
    declined: dict[str, dict[str, float]] = {}


class AgentSnapshot(msgspec.Struct, kw_only=True):
    now_ms: int
    statuses: dict[str, str]
    reasons: dict[str, str]
    nodes: dict[str, str]  # agent -> the node holding their socket
    loads: dict[str, dict[str, int]]  # agent -> channel -> open and offered
    offers: list[Offer]
    conversations: dict[str, list[str]]  # agent -> assigned conversations, of those read


class ConversationSnapshot(msgspec.Struct, kw_only=True):
    now_ms: int
    conversation: Conversation
    route: Route | None
    offers: list[Offer]
    # For its waiting_reason, as in QueueSnapshot.
    open_queues: set[str] = set()
    statuses: dict[str, str] = {}
    loads: dict[str, dict[str, int]] = {}
    declined: dict[str, float] = {}


def per_agent(raw: Mapping[Any, Any]) -> dict[str, dict[str, int]]:
    """{"agent|channel": n} hashes as {agent: {channel: n}}; "*" is the agent's total."""
    found: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        agent, _, channel = text(field).rpartition("|")
        found.setdefault(agent, {})[channel] = int(value)
    return found


async def waiting_inputs(
    services: Services, ids: Sequence[str]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """What waiting reasons need beside routes and statuses, in one round trip: every
    agent's load (their total under "*" kept), and the decliners of each of ``ids``."""
    presence, keys = services.presence, services.router.keys
    async with presence.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(presence.keys.load)
        if ids:
            pipe.hmget(keys.declined, list(ids))
        found = await pipe.execute()
    declined = found[1] if ids else []
    return per_agent(found[0]), {
        c: msgspec.json.decode(raw) for c, raw in zip(ids, declined, strict=True) if raw
    }


async def snapshot_queues(services: Services, limit: int = DEFAULT_WAITING_LIMIT) -> QueueSnapshot:
    """Every configured queue, with the first ``limit`` of its waiting conversations."""
    board, router = services.switchboard, services.router
    now = board.clock()
    stats = await router.queue_stats()
    statuses = await services.presence.statuses()
    open_queues = set(board.placer.open_queues(now))
    waiting: dict[str, list[tuple[str, Route]]] = {}
    accepts: dict[str, list[int]] = {}
    for queue in services.config.queues:
        ids = (await router.waiting(queue.name))[:limit]
        routes = await router.routes(ids)
        waiting[queue.name] = [(c, routes[c]) for c in ids if c in routes]
        accepts[queue.name] = await router.recent_accepts(queue.name)
    listed = [c for entries in waiting.values() for c, _ in entries]
    loads, declined = await waiting_inputs(services, listed) if listed else ({}, {})
    return QueueSnapshot(
        now_ms=now,
        open_queues=open_queues,
        stats=stats,
        statuses=statuses,
        waiting=waiting,
        accepts=accepts,
        loads=loads,
        declined=declined,
    )


async def snapshot_agents(
    services: Services, agents: Sequence[AgentConfig] | None = None
) -> AgentSnapshot:
    """Presence and pending offers of all, the conversations of ``agents`` (default: every
    configured agent)."""
    presence = services.presence
    async with presence.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(presence.keys.node)
        pipe.hgetall(presence.keys.load)
        nodes, loads = await pipe.execute()
    now = services.switchboard.clock()
    offers = await services.router.pending_offers()
    ids = [a.id for a in (services.config.agents if agents is None else agents)]
    held = await asyncio.gather(*(services.router.agent_conversation_ids(a) for a in ids))
    return AgentSnapshot(
        now_ms=now,
        statuses=await presence.statuses(),
        reasons=await presence.status_reasons(),
        nodes={text(a): text(n) for a, n in nodes.items()},
        loads={
            agent: {c: n for c, n in by_channel.items() if c != TOTAL}
            for agent, by_channel in per_agent(loads).items()
            if agent
        },
        offers=offers,
        conversations=dict(zip(ids, held, strict=True)),
    )


async def snapshot_conversation(
    services: Services, conversation: Conversation
) -> ConversationSnapshot:
    board = services.switchboard
    now = board.clock()
    loads, declined = await waiting_inputs(services, [conversation.id])
    return ConversationSnapshot(
        now_ms=now,
        conversation=conversation,
        route=await services.router.route(conversation.id),
        offers=await services.router.pending_offers(),
        open_queues=set(board.placer.open_queues(now)),
        statuses=await services.presence.statuses(),
        loads=loads,
        declined=declined.get(conversation.id, {}),
    )
