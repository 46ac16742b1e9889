"""Discrete-event simulation of a contact centre against the real router on a real Redis.

Customers arrive as a Poisson process, agents accept their offers (at once or after a delay)
and handle each conversation for an exponentially distributed time; the clock is virtual, in
milliseconds, and every routing decision is made by the real ``Router`` Lua scripts on a
private redis-server (``Router`` and ``Presence`` take ``now_ms`` explicitly, which is what
lets hours of traffic run in seconds). After each arrival and each completion the simulator
calls ``Router.dispatch(now)``, and the offers it returns become accept events.

It prints the mean wait (arrival to accept), the share answered within the SLA and each
agent's occupancy, beside Erlang C's predictions, and, for one skill, the waits of an ideal
first-come-first-served M/M/N queue fed the same arrivals and handle times: a work-conserving
FCFS router must match it conversation by conversation.

    .venv/bin/python bench/simulate.py --rate 2 --handle-s 60 --agents 125 --arrivals 20000 --seed 1
    .venv/bin/python bench/simulate.py --scenario two-skill \\
        --strategies least_loaded,longest_idle,round_robin

Sampling error: the mean wait of a finite run varies a lot near full occupancy (at 96 %
occupancy the standard deviation of a 20,000-arrival run's mean wait is about 60 % of the
mean). BENCHMARKS.md ("Simulation") gives the run lengths that land within 10 % reliably.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import math
import random
import statistics
import sys
import time
import uuid
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import erlang

from adapters.model import Customer, Message
from gateway.config import AgentConfig, QueueConfig, RoutingConfig
from gateway.redis.embedded import RedisServer
from presence.keys import agent_channel_field
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id
from router.keys import customer_field
from router.results import OfferMade, Placement

CHANNEL = "webchat"
ACCOUNT = "default"
NODE = "sim-node"
EPOCH_MS = 1_800_000_000_000  # virtual time zero, a plausible wall-clock millisecond
STRATEGIES = ("least_loaded", "longest_idle", "round_robin")
PURGE_EVERY = 2000
T_975 = {9: 2.262, 19: 2.093, 29: 2.045}  # Student t quantiles for the batch-means interval

ARRIVAL, ACCEPT, COMPLETE = 0, 1, 2


# --- Scenarios ------------------------------------------------------------------------------


class AgentDef(msgspec.Struct, frozen=True):
    id: str
    skills: dict[str, int]
    capacity: dict[str, int]


class QueueDef(msgspec.Struct, frozen=True):
    name: str
    skills: dict[str, int]
    share: float  # of all arrivals
    strategy: str = "least_loaded"


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    queues: list[QueueDef]
    agents: list[AgentDef]
    rate: float  # arrivals per second, all queues together
    handle_s: float
    arrivals: int
    warmup: int
    seed: int
    accept_delay_s: float = 0.0
    sla_s: float = 20.0

    @property
    def strategy(self) -> str:
        return "/".join(sorted({q.strategy for q in self.queues}))

    @property
    def capacity(self) -> int:
        return sum(n for a in self.agents for n in a.capacity.values())


def single_skill(
    agents: int,
    rate: float,
    handle_s: float,
    arrivals: int,
    warmup: int,
    seed: int,
    strategy: str = "least_loaded",
    accept_delay_s: float = 0.0,
    sla_s: float = 20.0,
    capacity: int = 1,
) -> Scenario:
    """One queue, no skill requirement, N interchangeable agents: the Erlang C setting."""
    return Scenario(
        name="single-skill",
        queues=[QueueDef("general", {}, 1.0, strategy)],
        agents=[AgentDef(f"a{i:04d}", {}, {CHANNEL: capacity}) for i in range(agents)],
        rate=rate,
        handle_s=handle_s,
        arrivals=arrivals,
        warmup=warmup,
        seed=seed,
        accept_delay_s=accept_delay_s,
        sla_s=sla_s,
    )


def two_skill_agents(general: int, billing: int, both: int, capacity: int = 1) -> list[AgentDef]:
    """General-only agents, billing specialists and generalists who hold both skills."""
    cap = {CHANNEL: capacity}
    agents = [AgentDef(f"g{i:03d}", {"general": 2}, cap) for i in range(general)]
    agents += [AgentDef(f"b{i:03d}", {"billing": 4}, cap) for i in range(billing)]
    agents += [AgentDef(f"x{i:03d}", {"general": 2, "billing": 3}, cap) for i in range(both)]
    return agents


def two_skill(
    strategy: str,
    rate: float,
    handle_s: float,
    arrivals: int,
    warmup: int,
    seed: int,
    agents: tuple[int, int, int] = (14, 8, 12),
    billing_share: float = 0.3,
    accept_delay_s: float = 0.0,
    sla_s: float = 20.0,
    capacity: int = 1,
) -> Scenario:
    """Queue "general" needs general >= 1, queue "billing" needs billing >= 3."""
    return Scenario(
        name="two-skill",
        queues=[
            QueueDef("general", {"general": 1}, 1.0 - billing_share, strategy),
            QueueDef("billing", {"billing": 3}, billing_share, strategy),
        ],
        agents=two_skill_agents(*agents, capacity=capacity),
        rate=rate,
        handle_s=handle_s,
        arrivals=arrivals,
        warmup=warmup,
        seed=seed,
        accept_delay_s=accept_delay_s,
        sla_s=sla_s,
    )


# --- Workload: one seeded stream, so every strategy sees the same customers ----------------


class Arrival(msgspec.Struct, frozen=True):
    index: int
    at_ms: int
    handle_ms: int
    queue: int


def workload(scenario: Scenario) -> Iterator[Arrival]:
    """Poisson arrivals with exponential handle times, each drawn at arrival, and a queue
    drawn by share. Arrival times are strictly increasing milliseconds (a tie is pushed one
    millisecond on), so that queue order never depends on conversation ids."""
    rng = random.Random(scenario.seed)
    cumulative = list(_cumulative([q.share for q in scenario.queues]))
    t = 0.0
    last_ms = -1
    for index in range(scenario.arrivals):
        t += rng.expovariate(scenario.rate)
        handle = rng.expovariate(1.0 / scenario.handle_s)
        pick = rng.random()
        at_ms = max(last_ms + 1, round(t * 1000))
        last_ms = at_ms
        queue = next(i for i, c in enumerate(cumulative) if pick < c or i == len(cumulative) - 1)
        yield Arrival(index, at_ms, max(1, round(handle * 1000)), queue)


def _cumulative(shares: Sequence[float]) -> Iterator[float]:
    total = sum(shares)
    running = 0.0
    for share in shares:
        running += share / total
        yield running


# --- The reference queue ---------------------------------------------------------------------


def ideal_fcfs_waits(scenario: Scenario) -> array[int]:
    """Waits (ms) of an ideal FCFS queue with ``scenario.capacity`` interchangeable servers on
    the same workload: each conversation takes the server that frees first, is offered at
    max(arrival, free), accepted ``accept_delay`` later and holds the server until it ends."""
    delay_ms = round(scenario.accept_delay_s * 1000)
    free = [0] * scenario.capacity
    waits = array("q")
    for a in workload(scenario):
        offered = max(a.at_ms, heapq.heappop(free))
        heapq.heappush(free, offered + delay_ms + a.handle_ms)
        waits.append(offered + delay_ms - a.at_ms)
    return waits


# --- The simulation --------------------------------------------------------------------------


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


# --- Measurement -----------------------------------------------------------------------------


class QueueSummary(msgspec.Struct, kw_only=True):
    name: str
    measured: int
    mean_wait_s: float
    ci95_s: tuple[float, float]
    waited_share: float
    within_sla: float
    p90_wait_s: float


class Summary(msgspec.Struct, kw_only=True):
    scenario: str
    strategy: str
    agents: int
    capacity: int
    rate: float
    handle_s: float
    accept_delay_s: float
    sla_s: float
    arrivals: int
    warmup: int
    seed: int
    virtual_s: float
    wall_s: float
    overall: QueueSummary
    queues: list[QueueSummary]
    occupancy_mean: float
    occupancy_min: float
    occupancy_max: float
    occupancy_by_group: dict[str, float]
    conserved: bool
    max_load: int
    offers: int
    accepts: int
    closes: int
    redis_final: dict[str, Any]
    erlang_c: erlang.ErlangC | None = None
    pooled_erlang_c: erlang.ErlangC | None = None  # skills: as if every agent had them all
    ideal_mean_wait_s: float | None = None
    ideal_mismatches: int | None = None


def batch_means_ci(values: Sequence[int], batches: int = 10) -> tuple[float, float]:
    """A 95 % interval for the mean of an autocorrelated series by batch means (in order).
    Near full occupancy even batches of a few thousand arrivals are correlated, so the
    interval is, if anything, too narrow."""
    size = len(values) // batches
    if size < 2:
        return (math.nan, math.nan)
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    centre = statistics.fmean(means)
    half = T_975.get(batches - 1, 1.96) * statistics.stdev(means) / math.sqrt(batches)
    return (centre - half, centre + half)


def summarise_waits(
    name: str, waits_ms: Sequence[int], sla_s: float, offer_ms: int = 0
) -> QueueSummary:
    """``offer_ms``: the accept delay, which every wait includes; waiting longer is queueing."""
    if not waits_ms:
        return QueueSummary(
            name=name,
            measured=0,
            mean_wait_s=math.nan,
            ci95_s=(math.nan, math.nan),
            waited_share=math.nan,
            within_sla=math.nan,
            p90_wait_s=math.nan,
        )
    sla_ms = sla_s * 1000
    low, high = batch_means_ci(waits_ms)
    ordered = sorted(waits_ms)
    return QueueSummary(
        name=name,
        measured=len(waits_ms),
        mean_wait_s=statistics.fmean(waits_ms) / 1000,
        ci95_s=(low / 1000, high / 1000),
        waited_share=sum(1 for w in waits_ms if w > offer_ms) / len(waits_ms),
        within_sla=sum(1 for w in waits_ms if w <= sla_ms) / len(waits_ms),
        p90_wait_s=ordered[int(0.9 * (len(ordered) - 1))] / 1000,
    )


def occupancy(outcome: Outcome) -> dict[str, float]:
    """Handling time (accept to close) inside the measured window, per unit of capacity."""
    start, end = outcome.window_ms
    span = max(1, end - start)
    capacity = {a.id: sum(a.capacity.values()) for a in outcome.scenario.agents}
    return {a: busy / (span * max(1, capacity[a])) for a, busy in outcome.busy_ms.items()}


def summarise(sim: Simulation, outcome: Outcome) -> Summary:
    s = outcome.scenario
    measured = range(s.warmup, s.arrivals)
    waits = [outcome.wait_ms[i] for i in measured]
    offer_ms = round(s.accept_delay_s * 1000)
    per_queue = [
        summarise_waits(
            q.name,
            [outcome.wait_ms[i] for i in measured if outcome.queue_of[i] == n],
            s.sla_s,
            offer_ms,
        )
        for n, q in enumerate(s.queues)
    ]
    occ = occupancy(outcome)
    groups: dict[str, list[float]] = {}
    for agent, value in occ.items():
        groups.setdefault(_group(agent), []).append(value)
    served = all(w >= 0 for w in outcome.wait_ms)
    final = outcome.redis_final
    conserved = (
        served
        and outcome.accepts == outcome.closes == s.arrivals
        and not sim.live
        and not any(final.values())
    )
    start, end = outcome.window_ms
    return Summary(
        scenario=s.name,
        strategy=s.strategy,
        agents=len(s.agents),
        capacity=s.capacity,
        rate=s.rate,
        handle_s=s.handle_s,
        accept_delay_s=s.accept_delay_s,
        sla_s=s.sla_s,
        arrivals=s.arrivals,
        warmup=s.warmup,
        seed=s.seed,
        virtual_s=(end - start) / 1000,
        wall_s=outcome.wall_s,
        overall=summarise_waits("all", waits, s.sla_s, offer_ms),
        queues=per_queue,
        occupancy_mean=statistics.fmean(occ.values()),
        occupancy_min=min(occ.values()),
        occupancy_max=max(occ.values()),
        occupancy_by_group={g: statistics.fmean(v) for g, v in sorted(groups.items())},
        conserved=conserved,
        max_load=max(outcome.max_load.values()),
        offers=outcome.offers,
        accepts=outcome.accepts,
        closes=outcome.closes,
        redis_final=final,
    )


def _group(agent: str) -> str:
    return {"g": "general-only", "b": "billing-only", "x": "both skills"}.get(agent[0], "all")


def compare_with_models(summary: Summary, outcome: Outcome) -> Summary:
    """Erlang C and the ideal FCFS queue, when every agent can take every conversation."""
    s = outcome.scenario
    servers = s.capacity
    if any(q.skills for q in s.queues):
        if s.rate * s.handle_s < servers:
            summary.pooled_erlang_c = erlang.predict(s.rate, s.handle_s, servers, s.sla_s)
        return summary
    if s.rate * (s.handle_s + s.accept_delay_s) < servers:
        if s.accept_delay_s:
            summary.erlang_c = erlang.predict_with_offer_delay(
                s.rate, s.handle_s, servers, s.accept_delay_s, s.sla_s
            )
        else:
            summary.erlang_c = erlang.predict(s.rate, s.handle_s, servers, s.sla_s)
    ideal = ideal_fcfs_waits(s)
    measured = range(s.warmup, s.arrivals)
    summary.ideal_mean_wait_s = statistics.fmean(ideal[i] for i in measured) / 1000
    summary.ideal_mismatches = sum(1 for i in measured if ideal[i] != outcome.wait_ms[i])
    return summary


# --- Running ---------------------------------------------------------------------------------


def client_for(url: str) -> Any:
    """A bytes-mode RESP2 client. The simulation makes one call at a time, so one connection
    serves it; a plain pool is measurably faster here than the gateway's blocking pool."""
    return aioredis.Redis.from_url(
        url, protocol=2, decode_responses=False, socket_timeout=60.0, socket_connect_timeout=10.0
    )


@contextlib.asynccontextmanager
async def redis_at(url: str | None) -> AsyncIterator[Any]:
    """A client on ``url``, or on a private, non-persistent redis-server started here."""
    server = None
    if url is None:
        server = RedisServer(persistent=False, unix_socket=True).start()
        url = server.url
    client = client_for(url)
    try:
        yield client
    finally:
        await client.aclose()
        if server is not None:
            server.stop()


async def simulate(
    redis: Any, scenario: Scenario, tenant: str | None = None, progress: bool = False
) -> tuple[Summary, Outcome]:
    """Run one scenario on its own tenant and summarise it."""
    sim = Simulation(redis, tenant or "sim" + uuid.uuid4().hex[:10], scenario)
    await sim.setup()
    outcome = await sim.run(progress=progress)
    return compare_with_models(summarise(sim, outcome), outcome), outcome


# --- Printing --------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def render_single(m: Summary) -> str:
    o = m.overall
    e = m.erlang_c
    lines = [
        f"scenario {m.scenario}: {m.agents} agents (capacity {m.capacity} in all), "
        f"strategy {m.strategy}, rate {m.rate:g}/s, handle {m.handle_s:g} s, "
        f"accept delay {m.accept_delay_s:g} s, seed {m.seed}",
        f"arrivals {m.arrivals} (first {m.warmup} excluded as warm-up), measured "
        f"{m.virtual_s / 3600:.2f} h of virtual time in {m.wall_s:.1f} s wall "
        f"({m.arrivals / max(m.wall_s, 1e-9):.0f} arrivals/s)",
        "",
        f"{'':28}{'simulated':>12}{'Erlang C':>12}",
        _row("mean wait (s)", f"{o.mean_wait_s:.2f}", e and f"{e.mean_wait_s:.2f}"),
        _row("P(queued)", f"{o.waited_share:.3f}", e and f"{e.prob_wait:.3f}"),
        _row(
            f"answered within {m.sla_s:g} s", f"{o.within_sla:.3f}", e and f"{e.service_level:.3f}"
        ),
        _row("occupancy, mean of agents", f"{m.occupancy_mean:.3f}", e and f"{e.occupancy:.3f}"),
        f"  95 % batch-means interval of the simulated mean wait: "
        f"{o.ci95_s[0]:.2f} .. {o.ci95_s[1]:.2f} s",
        f"  occupancy per agent: min {m.occupancy_min:.3f}, max {m.occupancy_max:.3f}",
    ]
    if e is not None:
        gap = o.mean_wait_s / e.mean_wait_s - 1 if e.mean_wait_s else math.nan
        lines.append(f"  simulated mean wait vs Erlang C: {100 * gap:+.1f} %")
    if m.ideal_mean_wait_s is not None:
        lines.append(
            f"  ideal FCFS M/M/{m.capacity} on the same arrivals: mean wait "
            f"{m.ideal_mean_wait_s:.2f} s; the router's wait differs on "
            f"{m.ideal_mismatches} of {o.measured} conversations"
        )
    if m.pooled_erlang_c is not None:
        lines.append(_pooled(m.pooled_erlang_c))
    lines.append(_conservation(m))
    return "\n".join(lines)


def _pooled(e: erlang.ErlangC) -> str:
    return (
        f"  Erlang C if every agent had every skill ({e.agents} servers): mean wait "
        f"{e.mean_wait_s:.2f} s, within {e.sla_s:g} s {_pct(e.service_level)}"
    )


def _row(label: str, sim: str, model: str | None) -> str:
    return f"{label:28}{sim:>12}{model or '-':>12}"


def _conservation(m: Summary) -> str:
    verdict = "ok" if m.conserved else "BROKEN"
    return (
        f"conservation {verdict}: {m.arrivals} arrivals, {m.offers} offers, {m.accepts} "
        f"accepts, {m.closes} closes, most conversations one agent held at once {m.max_load}, "
        f"left in Redis {m.redis_final}"
    )


def render_table(rows: Sequence[Summary]) -> str:
    """The strategy comparison as a markdown table."""
    names = [q.name for q in rows[0].queues]
    groups = list(rows[0].occupancy_by_group)
    head = ["strategy", "mean wait all (s)"]
    head += [f"mean wait {n} (s)" for n in names]
    head += [f"within {rows[0].sla_s:g} s {n}" for n in names]
    head += ["within SLA all", "occupancy mean / min / max"]
    head += [f"occ. {g}" for g in groups]
    head += ["wall (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        cells = [m.strategy, f"{m.overall.mean_wait_s:.1f}"]
        cells += [f"{q.mean_wait_s:.1f}" for q in m.queues]
        cells += [_pct(q.within_sla) for q in m.queues]
        cells += [_pct(m.overall.within_sla)]
        cells += [f"{m.occupancy_mean:.3f} / {m.occupancy_min:.3f} / {m.occupancy_max:.3f}"]
        cells += [f"{m.occupancy_by_group[g]:.3f}" for g in groups]
        cells += [f"{m.wall_s:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- CLI -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=["single-skill", "two-skill"], default="single-skill")
    p.add_argument("--rate", type=float, help="arrivals per second (default 2; two-skill 0.5)")
    p.add_argument("--handle-s", type=float, default=60.0, help="mean handle time, seconds")
    p.add_argument("--agents", type=int, default=125, help="single-skill: number of agents")
    p.add_argument(
        "--mix", default="14,8,12", help="two-skill: general-only, billing-only, both-skill agents"
    )
    p.add_argument("--billing-share", type=float, default=0.3, help="two-skill arrivals share")
    p.add_argument("--capacity", type=int, default=1, help="conversations per agent at once")
    p.add_argument("--arrivals", type=int, default=20000)
    p.add_argument("--warmup", type=int, help="arrivals left out (default: 10 %%, <= 10000)")
    p.add_argument("--accept-delay-s", type=float, default=0.0)
    p.add_argument("--sla-s", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--strategy", default="least_loaded", help="single-skill strategy")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="two-skill strategies")
    p.add_argument("--redis-url", help="an existing Redis (default: a private redis-server)")
    p.add_argument("--json", type=Path, help="write the summaries here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def default_warmup(arrivals: int) -> int:
    """10 % of the run, at most 10,000 arrivals. At 2/s, 60 s and 125 agents the queue forgets
    its empty start in about 1/(N mu (1 - sqrt(rho))^2) = 20 minutes (2,400 arrivals); 10,000
    arrivals are four of those. Longer warm-ups only waste the run."""
    return min(arrivals // 10, 10_000)


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    warmup = args.warmup if args.warmup is not None else default_warmup(args.arrivals)
    common = {
        "handle_s": args.handle_s,
        "arrivals": args.arrivals,
        "warmup": warmup,
        "seed": args.seed,
        "accept_delay_s": args.accept_delay_s,
        "sla_s": args.sla_s,
        "capacity": args.capacity,
    }
    if args.scenario == "single-skill":
        rate = 2.0 if args.rate is None else args.rate
        return [single_skill(args.agents, rate, strategy=args.strategy, **common)]
    mix = tuple(int(x) for x in args.mix.split(","))
    if len(mix) != 3:
        raise SystemExit("--mix takes three numbers: general-only,billing-only,both")
    rate = 0.5 if args.rate is None else args.rate
    return [
        two_skill(s.strip(), rate, agents=mix, billing_share=args.billing_share, **common)  # type: ignore[arg-type]
        for s in args.strategies.split(",")
    ]


async def amain(args: argparse.Namespace) -> list[Summary]:
    summaries = []
    async with redis_at(args.redis_url) as redis:
        for scenario in scenarios_from(args):
            if not args.quiet:
                print(f"running {scenario.name} / {scenario.strategy} ...", file=sys.stderr)
            summary, _ = await simulate(redis, scenario, progress=not args.quiet)
            summaries.append(summary)
            print(render_single(summary), flush=True)
            print(flush=True)
    if len(summaries) > 1 or args.scenario == "two-skill":
        print(render_table(summaries))
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(summaries)))
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    summaries = runner(amain(args))
    return 0 if all(m.conserved for m in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
