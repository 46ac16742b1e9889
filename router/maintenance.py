"""The router's upkeep: what falls due with time rather than with anyone's request (agents
gone past their grace period, conversation timers for escalation, ageing, the maximum wait
and inactivity, closed conversations past retention), which the gateway's housekeeping runs,
and the short history of accept times per queue from which a customer's estimated wait is
worked out."""

from __future__ import annotations

from collections.abc import Sequence

from router.core import RouterCore, ms
from router.events import add_event
from router.reads import text
from router.results import AgentExpiry, TimerEvent

# How far a timer whose follow-up the caller does is pushed ahead while it works.
LEASE_MS = 5_000

# How far back the per-queue SLA record reaches (the supervisors' wallboard's 15 minutes).
SLA_WINDOW_MS = 15 * 60_000


class Maintenance(RouterCore):
    async def expire_agents(self, now_ms: int, grace_ms: int) -> list[AgentExpiry]:
        """Agents gone past their grace period go offline; their offers are taken back and
        their conversations requeued, but for those answered in an on_agent_gone = "keep"
        queue."""
        return await self._agents_gone(now_ms, grace_ms, "")

    async def agent_gone(self, agent: str, now_ms: int) -> list[AgentExpiry]:
        """As expire_agents, for one agent gone for good now (a supervisor set them offline),
        whether or not their socket is still there."""
        return await self._agents_gone(now_ms, 0, agent)

    async def _agents_gone(self, now_ms: int, grace_ms: int, agent: str) -> list[AgentExpiry]:
        flat = await self._scripts.run(
            "expire_agents",
            now_ms=now_ms,
            grace_ms=grace_ms,
            agent=agent,
            **self._queues(),
        )
        events = []
        for i in range(0, len(flat), 3):
            what, _, offer = text(flat[i + 2]).partition(":")
            events.append(
                AgentExpiry(
                    agent=text(flat[i]),
                    conversation_id=text(flat[i + 1]) or None,
                    what=what,
                    offer_id=offer or None,
                )
            )
        return events

    async def fire_timers(
        self, now_ms: int, open_queues: Sequence[str] | None = None, limit: int = 100
    ) -> list[TimerEvent]:
        flat = await self._scripts.run(
            "timers",
            now_ms=now_ms,
            limit=limit,
            lease_ms=LEASE_MS,
            **self._queues(open_queues),
        )
        return [
            TimerEvent(
                kind=text(flat[i]), conversation_id=text(flat[i + 1]), detail=text(flat[i + 2])
            )
            for i in range(0, len(flat), 3)
        ]

    async def purge_closed(self, now_ms: int, retention_s: float, limit: int = 200) -> int:
        """Forget conversations closed more than retention_s ago; returns how many."""
        k = self.keys
        old = [
            text(c)
            for c in await self.redis.zrangebyscore(
                k.closed, "-inf", now_ms - ms(retention_s), start=0, num=limit
            )
        ]
        if not old:
            return 0
        return int(
            await self._scripts.run(
                "purge",
                message_lists=[k.messages(c) for c in old],
                note_lists=[k.notes(c) for c in old],
                conversations=old,
            )
        )

    async def record_accept(
        self,
        queue: str,
        now_ms: int,
        keep: int = 20,
        sla_met: tuple[str, bool] | None = None,
        waited_s: float | None = None,
        sla_s: float | None = None,
    ) -> None:
        """Remember recent accept times per queue, for the estimated wait told to customers;
        with ``sla_met`` (conversation, whether it was answered within its SLA), in the same
        round trip, the queue's SLA record of the last SLA_WINDOW_MS, and a breach's
        sla_breached event (with how long it waited and its SLA) in the same MULTI."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.accepts(queue), now_ms)
            pipe.ltrim(self.keys.accepts(queue), 0, keep - 1)
            if sla_met is not None:
                conversation_id, met = sla_met
                key = self.keys.sla_answers(queue)
                pipe.zadd(key, {f"{conversation_id}|{int(met)}": now_ms})
                pipe.zremrangebyscore(key, "-inf", now_ms - SLA_WINDOW_MS)
                if not met:
                    add_event(
                        pipe, self.keys.events, self.events, self.keys.tenant, "sla_breached",
                        conversation_id, now_ms,
                        {"queue": queue, "waited_s": waited_s, "sla_s": sla_s},
                    )  # fmt: skip
            await pipe.execute()

    async def recent_sla(self, queues: Sequence[str], now_ms: int) -> dict[str, tuple[int, int]]:
        """Per queue, (answered, of which within SLA) over the last SLA_WINDOW_MS."""
        since = now_ms - SLA_WINDOW_MS
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrangebyscore(self.keys.sla_answers(queue), since, "+inf")
            found = await pipe.execute()
        return {
            queue: (len(members), sum(text(m).endswith("|1") for m in members))
            for queue, members in zip(queues, found, strict=True)
        }

    async def recent_accepts(self, queue: str) -> list[int]:
        """Accept times in ms, newest first."""
        return [int(t) for t in await self.redis.lrange(self.keys.accepts(queue), 0, -1)]
