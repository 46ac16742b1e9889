"""The discrete-event loop that feeds a scenario's customers to the real router on Redis.

The clock is virtual, in milliseconds: ``Router`` and ``Presence`` take ``now_ms`` explicitly,
which is what lets hours of traffic run in seconds. After each arrival and each completion the
loop calls ``Router.dispatch(now)``, and the offers it returns become accept events. As it runs
it checks what the router must never break (one offer per conversation, no agent over its
capacity, the router's load count equal to the conversations held) and records the raw
``Outcome`` that ``sim_summary`` turns into figures.
"""

from __future__ import annotations

import heapq
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sim_scenarios import CHANNEL, Scenario
from sim_workload import Arrival, workload

from adapters.model import Customer, Message
from gateway.config import AgentConfig, QueueConfig, RoutingConfig
from presence.keys import agent_channel_field
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id
from router.keys import customer_field
from router.results import OfferMade, Placement

ACCOUNT = "default"
NODE = "sim-node"
EPOCH_MS = 1_800_000_000_000  # virtual time zero, a plausible wall-clock millisecond
PURGE_EVERY = 2000

ARRIVAL, ACCEPT, COMPLETE = 0, 1, 2


@dataclass(slots=True)
class Live:
    """A conversation in flight."""

    arrival: Arrival
    agent: str = ""
    offer_id: str = ""
    accepted_ms: int = -1


@dataclass
class Outcome:
    """Raw results: per-arrival waits and queues, per-agent busy time, conservation counts."""

    scenario: Scenario
    wait_ms: array[int]  # per arrival, -1 until accepted
    queue_of: array[int]  # per arrival, the queue's position in scenario.queues
    agent_of: array[int]  # per arrival, the accepting agent's position in scenario.agents
    busy_ms: dict[str, int]
    max_load: dict[str, int]
    window_ms: tuple[int, int]
    offers: int = 0
    accepts: int = 0
    closes: int = 0
    dispatch_calls: int = 0
    wall_s: float = 0.0
    redis_final: dict[str, Any] = field(default_factory=dict)


class ConservationError(AssertionError):
    """The router broke an invariant the simulation checks as it runs."""


class Simulation:
    def __init__(self, redis: Any, tenant: str, scenario: Scenario) -> None:
        self.redis = redis
        self.s = scenario
        offer_timeout_s = max(30.0, 2 * scenario.accept_delay_s + 1)
        # dedupe markers expire in (real) seconds: a long run must not pile them up.
        self.settings = RoutingConfig(offer_timeout_s=offer_timeout_s, dedupe_ttl_s=60.0)
        configs = [
            QueueConfig(name=q.name, skills=q.skills, strategy=q.strategy)  # type: ignore[arg-type]
            for q in scenario.queues
        ]
        self.router = Router(redis, tenant, configs, self.settings, configs[0].name)
        self.presence = Presence(redis, tenant)
        self.capacity = {a.id: a.capacity.get(CHANNEL, 0) for a in scenario.agents}
        self.agent_index = {a.id: i for i, a in enumerate(scenario.agents)}
        self.events: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        self.live: dict[str, Live] = {}
        self.load = dict.fromkeys(self.capacity, 0)
        self.purge: list[tuple[str, int]] = []
        self.window_start: int | None = None
        self.window_end: int | None = None
        n = scenario.arrivals
        self.out = Outcome(
            scenario=scenario,
            wait_ms=array("q", [-1]) * n,
            queue_of=array("b", [-1]) * n,
            agent_of=array("i", [-1]) * n,
            busy_ms=dict.fromkeys(self.capacity, 0),
            max_load=dict.fromkeys(self.capacity, 0),
            window_ms=(0, 0),
        )

    async def setup(self) -> None:
        await self.router.sync_queues()
        await self.presence.sync_agents(
            [AgentConfig(id=a.id, skills=a.skills, capacity=a.capacity) for a in self.s.agents]
        )
        for agent in self.s.agents:
            await self.presence.connect(agent.id, NODE, f"conn-{agent.id}", "available")

    def push(self, at_ms: int, kind: int, item: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at_ms, self.seq, kind, item))

    async def run(self, progress: bool = False) -> Outcome:
        started = time.perf_counter()
        arrivals = workload(self.s)
        first = next(arrivals, None)
        if first is not None:
            self.push(first.at_ms, ARRIVAL, first)
        report_every = max(1, self.s.arrivals // 10)
        while self.events:
            now, _, kind, item = heapq.heappop(self.events)
            if kind == ARRIVAL:
                self.open_window(item, now)
                upcoming = next(arrivals, None)
                if upcoming is not None:
                    self.push(upcoming.at_ms, ARRIVAL, upcoming)
                await self.arrive(item)
                await self.dispatch(now)
                if progress and (item.index + 1) % report_every == 0:
                    _progress(item.index + 1, self.s.arrivals, started)
            elif kind == ACCEPT:
                await self.accept(item, now)
            else:
                await self.complete(item, now)
                await self.dispatch(now)
        await self.flush_purge()
        self.out.window_ms = (self.window_start or 0, self.window_end or 0)
        self.out.wall_s = time.perf_counter() - started
        self.out.redis_final = await self.final_state()
        return self.out

    def open_window(self, a: Arrival, now: int) -> None:
        if a.index == self.s.warmup:
            self.window_start = now
        if a.index == self.s.arrivals - 1:
            self.window_end = now

    async def arrive(self, a: Arrival) -> None:
        at = EPOCH_MS + a.at_ms
        message = Message(
            id=new_id("m", at),
            direction="in",
            text="hello",
            sent_at=datetime.fromtimestamp(at / 1000, UTC),
        )
        placement = Placement(queue=self.s.queues[a.queue].name, priority=0)
        result = await self.router.ingest(
            CHANNEL, ACCOUNT, f"sim-{a.index}", Customer(id=f"c{a.index}"), message, at, placement
        )
        if not result.created or result.duplicate:
            raise ConservationError(f"arrival {a.index} did not open a new conversation")
        self.live[result.conversation_id] = Live(a)
        self.out.queue_of[a.index] = a.queue

    async def dispatch(self, now: int) -> None:
        batch = self.settings.dispatch_batch
        while True:
            offers = await self.router.dispatch(EPOCH_MS + now)
            self.out.dispatch_calls += 1
            for offer in offers:
                self.offered(offer, now)
            if len(offers) < batch:
                return

    def offered(self, offer: OfferMade, now: int) -> None:
        conv = self.live.get(offer.conversation_id)
        if conv is None or conv.agent:
            raise ConservationError(f"second offer of {offer.conversation_id}")
        load = self.load[offer.agent] + 1  # capacity is reserved at the offer
        if load > self.capacity[offer.agent]:
            raise ConservationError(f"{offer.agent} holds {load} > capacity")
        self.load[offer.agent] = load
        self.out.max_load[offer.agent] = max(self.out.max_load[offer.agent], load)
        conv.agent, conv.offer_id = offer.agent, offer.offer_id or ""
        self.out.offers += 1
        delay = 0 if offer.assigned else round(self.s.accept_delay_s * 1000)
        self.push(now + delay, ACCEPT, offer.conversation_id)

    async def accept(self, conversation_id: str, now: int) -> None:
        conv = self.live[conversation_id]
        if conv.accepted_ms >= 0:
            raise ConservationError(f"{conversation_id} accepted twice")
        if conv.offer_id:  # else auto-accept: the router assigned it at the offer
            await self.router.accept(conv.offer_id, conv.agent, EPOCH_MS + now)
        conv.accepted_ms = now
        a = conv.arrival
        self.out.wait_ms[a.index] = now - a.at_ms
        self.out.agent_of[a.index] = self.agent_index[conv.agent]
        self.out.accepts += 1
        self.push(now + a.handle_ms, COMPLETE, conversation_id)

    async def complete(self, conversation_id: str, now: int) -> None:
        conv = self.live.pop(conversation_id)
        await self.router.close(conversation_id, conv.agent)
        self.load[conv.agent] -= 1
        self.out.closes += 1
        self.busy(conv.agent, conv.accepted_ms, now)
        self.purge.append((conversation_id, conv.arrival.index))
        if len(self.purge) >= PURGE_EVERY:
            await self.flush_purge()

    def busy(self, agent: str, start: int, end: int) -> None:
        """Add handling time that falls inside the measured window: from the warm-up's last
        arrival to the run's last arrival. A completion before the window opens adds nothing;
        the window's end is known before any completion that can pass it."""
        if self.window_start is None:
            return
        if self.window_end is not None:
            end = min(end, self.window_end)
        self.out.busy_ms[agent] += max(0, end - max(start, self.window_start))

    async def flush_purge(self) -> None:
        """Forget closed conversations: the router keeps their records, and a run of millions
        would otherwise fill memory. Only this simulation's own closed conversations go."""
        if not self.purge:
            return
        k = self.router.keys
        convs = [c for c, _ in self.purge]
        async with self.redis.pipeline(transaction=False) as pipe:
            for field_key in (k.state, k.route, k.meta, k.offer_seq, k.first_reply):
                pipe.hdel(field_key, *convs)
            customers = [customer_field(CHANNEL, ACCOUNT, f"c{i}") for _, i in self.purge]
            pipe.hdel(k.last_agent, *customers)
            pipe.delete(*[k.messages(c) for c in convs])
            pipe.delete(*[k.dedupe(CHANNEL, ACCOUNT, f"sim-{i}") for _, i in self.purge])
            pipe.hgetall(self.presence.keys.load)
            loads = (await pipe.execute())[-1]
        self.purge.clear()
        self.check_loads(loads)

    def check_loads(self, raw: dict[bytes, bytes]) -> None:
        """The router's own load count must agree with the conversations the agents hold."""
        for agent, held in self.load.items():
            stored = int(raw.get(agent_channel_field(agent, CHANNEL).encode(), 0))
            if stored != held:
                raise ConservationError(f"Redis says {agent} holds {stored}, not {held}")

    async def final_state(self) -> dict[str, Any]:
        """What Redis holds after the run: every queue empty, no offer, no load."""
        k, a = self.router.keys, self.presence.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in k.queue_keys:
                pipe.zcard(key)
            pipe.hlen(k.offers)
            pipe.zcard(k.assignments)
            pipe.hvals(a.load)
            raw = await pipe.execute()
        n = len(k.queue_keys)
        return {
            "queued": sum(raw[:n]),
            "offers": raw[n],
            "assignments": raw[n + 1],
            "load": sum(int(v) for v in raw[n + 2]),
        }


def _progress(done: int, total: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(f"  {done}/{total} arrivals, {elapsed:.1f} s", file=sys.stderr, flush=True)
