"""Agents' presence in Redis: which process holds each agent's socket, their status, their
skills and capacity, and the heartbeats of gateway processes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import msgspec

from presence.agents import AgentSpec
from presence.keys import PresenceKeys, agent_channel_field
from presence.lua import Scripts
from presence.scripts import CONTRACTS

AVAILABLE = "available"
BUILT_IN_STATUSES = ("available", "away", "offline")


class Connected(msgspec.Struct, frozen=True):
    previous_node: str | None
    previous_connection: str | None
    status: str


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class Presence:
    def __init__(self, redis: Any, tenant: str) -> None:
        self.redis = redis
        self.keys = PresenceKeys(tenant)
        self._scripts = Scripts(redis, "presence", CONTRACTS, self.keys)

    async def sync_agents(self, agents: Iterable[AgentSpec]) -> None:
        """Publish the configured agents' skills and capacity; forget agents no longer listed."""
        k = self.keys
        agents = list(agents)
        skills = {a.id: json.dumps(a.skills) for a in agents}
        capacity = {
            agent_channel_field(a.id, channel): n
            for a in agents
            for channel, n in a.capacity.items()
        }
        # The total across channels ("agent|*") is absent when the agent has no such cap.
        capacity.update(
            {agent_channel_field(a.id, "*"): a.max_total for a in agents if a.max_total is not None}
        )
        auto_accept = [a.id for a in agents if a.auto_accept]
        known = set(skills)
        stale_agents = [_text(f) for f in await self.redis.hkeys(k.skills)]
        stale_agents = [a for a in stale_agents if a not in known]
        stale_capacity = [
            f for f in map(_text, await self.redis.hkeys(k.capacity)) if f not in capacity
        ]
        async with self.redis.pipeline(transaction=True) as pipe:
            if skills:
                pipe.hset(k.skills, mapping=skills)
            if capacity:
                pipe.hset(k.capacity, mapping=capacity)
            if stale_agents:
                pipe.hdel(k.skills, *stale_agents)
                pipe.srem(k.available, *stale_agents)
            if stale_capacity:
                pipe.hdel(k.capacity, *stale_capacity)
            pipe.delete(k.auto_accept)
            if auto_accept:
                pipe.sadd(k.auto_accept, *auto_accept)
            await pipe.execute()
        await self.rebuild_index()

    async def rebuild_index(self) -> int:
        """Index the agents again for the skills, capacity and queues now published (after
        the queues: the router's sync_queues); returns how many agents are indexed."""
        return int(await self._scripts.run("index_rebuild"))

    async def connect(
        self, agent: str, node_id: str, connection_id: str, initial_status: str
    ) -> Connected:
        previous_node, previous_connection, status = await self._scripts.run(
            "connect",
            agent=agent,
            node_id=node_id,
            connection_id=connection_id,
            initial_status=initial_status,
        )
        return Connected(
            previous_node=_text(previous_node) or None,
            previous_connection=_text(previous_connection) or None,
            status=_text(status),
        )

    async def disconnect(self, agent: str, connection_id: str, now_ms: int) -> bool:
        done = await self._scripts.run(
            "disconnect", agent=agent, connection_id=connection_id, now_ms=now_ms
        )
        return bool(done)

    async def set_status(self, agent: str, status: str, reason: str = "") -> bool:
        """Returns whether the agent can now receive offers. ``reason`` says who or what set
        it (an administrator, missed offers), for supervisors."""
        return bool(
            await self._scripts.run("set_status", agent=agent, new_status=status, reason=reason)
        )

    async def status_reasons(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.status_reason)
        return {_text(a): _text(r) for a, r in raw.items()}

    async def status(self, agent: str) -> str:
        return _text(await self.redis.hget(self.keys.status, agent)) or "offline"

    async def node_of(self, agent: str) -> str | None:
        return _text(await self.redis.hget(self.keys.node, agent)) or None

    async def heartbeat(self, node_id: str, now_ms: int) -> None:
        await self.redis.zadd(self.keys.nodes, {node_id: now_ms})

    async def leave(self, node_id: str) -> None:
        await self.redis.zrem(self.keys.nodes, node_id)

    async def reap_dead_nodes(self, now_ms: int, node_ttl_ms: int) -> list[str]:
        reaped = await self._scripts.run("reap_nodes", now_ms=now_ms, node_ttl_ms=node_ttl_ms)
        return [_text(a) for a in reaped]

    async def statuses(self) -> dict[str, str]:
        """Every known agent's status, with connected-ness folded in: an agent whose socket is
        gone counts as offline whatever status they chose."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(k.status)
            pipe.hkeys(k.node)
            pipe.hkeys(k.skills)
            raw_status, connected, known = await pipe.execute()
        online = {_text(a) for a in connected}
        chosen = {_text(a): _text(s) for a, s in raw_status.items()}
        return {
            agent: chosen.get(agent, "offline") if agent in online else "offline"
            for agent in map(_text, known)
        }

    async def loads(self, agent: str) -> dict[str, int]:
        """Open and offered conversations per channel (the total across channels left out)."""
        raw = await self.redis.hgetall(self.keys.load)
        prefix = agent + "|"
        loads = {
            _text(f)[len(prefix) :]: int(v) for f, v in raw.items() if _text(f).startswith(prefix)
        }
        loads.pop("*", None)
        return loads
