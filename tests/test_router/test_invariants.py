"""Stateful property tests of the router and presence scripts on the suite's real Redis.

Hypothesis plays random sequences of arrivals (some reopening a closed conversation),
redeliveries, dispatches (offers, and direct assignments for an auto-accepting agent),
accepts, declines, offer timeouts, conversation timers (ageing, escalation to relaxed skills
and to an overflow queue, inactivity), transfers, re-placements (an edited review), status
changes, logins and disconnects, dead gateway processes, grace expiry, replies and closes
against one tenant, on a virtual clock. After every step it reads the tenant's whole
routing state from Redis and checks docs/design.md's invariants 1, 2, 5, 6 and 7 on it
(tests/test_router/invariants.py). Each rule also checks what the call returned against
what the state before it predicts (refusals, enqueue times, who may be offered what), and
dispatch is checked to leave no conversation waiting that an agent could take.

A failure prints the sequence of steps that breaks an invariant, already shrunk (which can
take a minute or two: hence the longer timeout).

Adding a rule for a new router operation: read ``self.snap`` (the state before the step),
call the operation through ``self.run``, check its result; the invariants run after it.
Choose conversations with ``self.oldest_first`` and ``self.choose``, never by id.

ZT_STATEFUL_EXAMPLES / ZT_STATEFUL_STEPS make a longer local run, e.g.
``ZT_STATEFUL_EXAMPLES=2000 pytest tests/test_router/test_invariants.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import msgspec
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, settings, target
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from test_router.invariants import (
    RoutingState,
    check_all,
    check_grace_expiry,
    read_state,
)

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, RoutingConfig, with_defaults
from gateway.redis.embedded import RedisServer
from presence.registry import Presence
from router.config import EscalationStep, QueueConfig, on_agent_gone
from router.engine import Router
from router.ids import new_id
from router.keys import customer_field
from router.placement import queue_for_channel
from router.results import AgentExpiry, Placement, RoutingError
from router.route import encode_route

T = TypeVar("T")

START_MS = 1_800_000_000_000
OFFER_TIMEOUT_MS = 2_500
# Well past the offer timeout, so that sequences reach re-offers to decliners (dispatch.lua)
# as well as the cooldown running out.
DECLINE_COOLDOWN_MS = 9_000
GRACE_MS = 5_000
NODE_TTL_MS = 15_000
MISSED_OFFERS_BEFORE_AWAY = 1
ACCOUNT = "default"
REOPEN_MS = {"email": 30_000}  # channels whose adapters ask for reopening, and the window

# Three agents with small, uneven capacities: alice has a total cap across channels, bob
# accepts automatically (no offers), carol alone has the vip skill, bob has no billing skill.
AGENTS = [
    AgentConfig(
        id="alice",
        token="x",
        skills={"billing": 2},
        capacity={"webchat": 2, "email": 2, "wechat": 1},
        max_total=2,
    ),
    AgentConfig(
        id="bob",
        token="x",
        skills={},
        capacity={"webchat": 1, "email": 2, "wechat": 1},
        auto_accept=True,
    ),
    AgentConfig(
        id="carol",
        token="x",
        skills={"billing": 1, "vip": 1},
        capacity={"webchat": 1, "wechat": 1, "email": 1},
    ),
]
# One queue per channel, each with its own skills, priority, strategy and timers: chat ages
# (priority +1 every 5 s of waiting) and has an inactivity clock; mail relaxes its billing
# skill after 4 s; vip lets chat's agents take it after 3 s (overflow).
QUEUES = [
    QueueConfig(name="chat", channels=["webchat"], priority=1, ageing_s=5, inactivity_warn_s=8),
    QueueConfig(
        name="mail",
        channels=["email"],
        skills={"billing": 1},
        priority=3,
        strategy="longest_idle",
        escalation=[EscalationStep(after_s=4, relax_skills=True)],
    ),
    QueueConfig(
        name="vip",
        channels=["wechat"],
        skills={"vip": 1},
        priority=5,
        strategy="round_robin",
        overflow="chat",
        escalation=[EscalationStep(after_s=3, overflow=True)],
    ),
]
AGENT_IDS = [a.id for a in AGENTS]
SKILLS = {a.id: a.skills for a in AGENTS}
AUTO_ACCEPT = {a.id for a in AGENTS if a.auto_accept}
QUEUE_NAMES = [q.name for q in QUEUES]
QUEUE_SPECS = {q.name: q for q in QUEUES}
# By their channels: chat and vip give an answered conversation of a gone agent to another,
# mail keeps it for the agent.
KEEPS = {q.name: on_agent_gone(q) == "keep" for q in QUEUES}
CHANNELS = ["webchat", "email", "wechat"]
CUSTOMERS = ["u1", "u2", "u3"]
NODES = ["node-1", "node-2"]

MAX_EXAMPLES = int(os.environ.get("ZT_STATEFUL_EXAMPLES", "80"))
STEPS = int(os.environ.get("ZT_STATEFUL_STEPS", "50"))

picks = st.integers(min_value=0, max_value=255)  # an index into whatever the rule chooses from
agents = st.sampled_from(AGENT_IDS)
# Agents are available most of the time, or little would be routed.
agent_actions = st.sampled_from(
    ["set available"] * 2 + ["set away", "set offline"] + [f"log in on {n}" for n in NODES]
)
who_acts = st.sampled_from(["holder", "admin", "other"])
open_states = st.sampled_from(["assigned", "offered", "queued"])


# What dispatch may do, mirrored from router/lua/dispatch.lua.


def fits(s: RoutingState, agent: str, channel: str, extra: dict[str, int]) -> bool:
    """Room on the channel and, with a total cap, in total; ``extra`` is load reserved since
    ``s`` was read."""
    field, total = f"{agent}|{channel}", f"{agent}|*"
    if s.load.get(field, 0) + extra.get(field, 0) >= s.capacity.get(field, 0):
        return False
    cap = s.capacity.get(total)
    return cap is None or s.load.get(total, 0) + extra.get(total, 0) < cap


def requirements(route: dict[str, Any]) -> list[dict[str, int]]:
    """Skills that qualify: the route's own (escalation may relax them), else the queue's;
    or an overflow queue's."""
    own = route["s"] if "s" in route else QUEUE_SPECS[route["q"]].skills
    return [own, *(QUEUE_SPECS[name].skills for name in route.get("x", []))]


def qualifies(agent: str, route: dict[str, Any]) -> bool:
    have = SKILLS[agent]
    return any(
        all(have.get(skill, 0) >= level for skill, level in required.items())
        for required in requirements(route)
    )


def preferred(s: RoutingState, route: dict[str, Any], now: int) -> str | None:
    """The agent a conversation waits for: a returning customer's last agent (who must have
    the skills: "pk") or a transfer's target, while the preference lasts and they are
    available."""
    agent = route.get("pa")
    if agent is None or ("pu" in route and now >= route["pu"]) or agent not in s.available:
        return None
    if route.get("pk") and not qualifies(agent, route):
        return None
    return agent


def why_not(
    s: RoutingState, conv: str, agent: str, now: int, extra: dict[str, int] | None = None
) -> str | None:
    """Why ``agent`` may not get ``conv`` now (None: they may)."""
    route = s.routes[conv]
    if agent not in s.available:
        return "not available"
    if not fits(s, agent, route["c"], extra or {}):
        return "full"
    if agent == preferred(s, route, now):
        return None  # a preference skips the skills and the decline cooldown
    if not qualifies(agent, route):
        return "lacking skills"
    if recent_decline(s, conv, agent, now) is not None and agent != reoffer_to(s, conv, now, extra):
        return "a recent decliner"
    return None


def recent_decline(s: RoutingState, conv: str, agent: str, now: int) -> float | None:
    """When ``agent`` declined ``conv`` (or let an offer time out), within the cooldown."""
    declined_at = s.declined.get(conv, {}).get(agent)
    if declined_at is not None and now - declined_at < DECLINE_COOLDOWN_MS:
        return declined_at
    return None


def reoffer_to(
    s: RoutingState, conv: str, now: int, extra: dict[str, int] | None = None
) -> str | None:
    """The decliner ``conv`` is offered again: when every available agent with room and the
    skills declined it within the cooldown, the one who declined longest ago (then by id),
    once an offer timeout has passed since the latest of those declines."""
    route = s.routes[conv]
    takers = [
        a
        for a in AGENT_IDS
        if a in s.available and fits(s, a, route["c"], extra or {}) and qualifies(a, route)
    ]
    declines = {a: recent_decline(s, conv, a, now) for a in takers}
    if not takers or any(when is None for when in declines.values()):
        return None
    if now - max(w for w in declines.values() if w is not None) < OFFER_TIMEOUT_MS:
        return None
    return min(takers, key=lambda a: (declines[a], a))


def situations(before: RoutingState, after: RoutingState) -> set[str]:
    """What one step did, in coarse terms: conversation state changes ("offered->assigned"),
    answered conversations, agents at capacity, agents gone past their grace period."""
    found = set()
    for conv, state in after.states.items():
        was = before.states.get(conv, "new")
        if was != state:
            answered = "answered " if conv in before.first_reply else ""
            found.add(f"{answered}{was}->{state}")
        elif before.routes.get(conv, {}).get("q") != after.routes.get(conv, {}).get("q"):
            found.add(f"{state} moved to another queue")
    if len(after.first_reply) > len(before.first_reply):
        found.add("answered")
    if any(0 < after.capacity.get(f, 0) <= n for f, n in after.load.items()):
        found.add("an agent at capacity")
    for agent in set(before.disconnected_at) - set(after.disconnected_at) - set(after.node):
        held = set(before.held_by(agent))
        found.add("answered kept at grace expiry" if held & set(before.first_reply) else "expiry")
    return found


class RoutingMachine(RuleBasedStateMachine):
    redis_url: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tenant = "t" + uuid.uuid4().hex[:10]
        self.redis = aioredis.Redis.from_url(self.redis_url, protocol=2, decode_responses=False)
        core = with_defaults(
            CoreConfig(
                agents=AGENTS,
                queues=QUEUES,
                routing=RoutingConfig(
                    offer_timeout_s=OFFER_TIMEOUT_MS / 1000,
                    decline_cooldown_s=DECLINE_COOLDOWN_MS / 1000,
                    missed_offers_before_away=MISSED_OFFERS_BEFORE_AWAY,
                ),
            )
        )
        self.router = Router(
            self.redis, self.tenant, core.queues, core.routing, core.routing.default_queue
        )
        self.presence = Presence(self.redis, self.tenant)
        self.now = START_MS
        self.seq = 0
        self.conn: dict[str, str] = {}  # agent -> their current connection id
        self.stale_conns: list[tuple[str, str]] = []  # replaced or dropped connections
        self.first_enqueued: dict[str, int] = {}  # conversation -> enqueue time at (re)opening
        self.age: dict[str, int] = {}  # conversation -> creation order
        self.delivered: list[tuple[str, str, str, Message, str]] = []
        self.gone_offers: list[tuple[str, str]] = []  # (offer id, agent) no longer pending
        self.fresh: RoutingState | None = None
        self.seen: set[str] = set()  # situations this example reached (see situations())
        self.run(self._setup())
        self.snap = self.read()

    async def _setup(self) -> None:
        await self.router.sync_queues()
        await self.presence.sync_agents(AGENTS)
        for i, agent in enumerate(AGENT_IDS):
            self.conn[agent] = self.next_id(agent)
            await self.presence.connect(agent, NODES[i % 2], self.conn[agent], "available")

    def teardown(self) -> None:
        # Steer hypothesis towards sequences that reach many different situations.
        target(float(len(self.seen)), label="situations reached")

        async def clean() -> None:
            keys = [k async for k in self.redis.scan_iter(match=f"zt:{{{self.tenant}}}:*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()

        try:
            self.run(clean())
        finally:
            self.loop.close()

    # Plumbing.

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrap() -> T:
            return await awaitable

        self.fresh = None  # the call may change the state
        return self.loop.run_until_complete(wrap())

    def read(self) -> RoutingState:
        """The state now. A rule's last read is reused by the invariants after it."""
        state = self.run(read_state(self.redis, self.tenant, QUEUE_NAMES))
        self.fresh = state
        return state

    def refused(self, code: str, awaitable: Awaitable[Any]) -> None:
        with pytest.raises(RoutingError) as refusal:
            self.run(awaitable)
        assert refusal.value.code == code, f"expected {code!r}, got {refusal.value.code!r}"

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq}"

    def choose(self, items: Sequence[T], pick: int) -> T:
        return items[pick % len(items)]

    def oldest_first(self, conversations: Iterable[str]) -> list[str]:
        """Conversations in creation order. Rules choose by position in orders like this one,
        never by id: ids are partly random, and hypothesis must see the same choices each time
        it replays a sequence of steps."""
        return sorted(conversations, key=self.age.__getitem__)

    def open_in_state(self, state: str) -> list[str]:
        """Open conversations in ``state``, or all open ones when none is, oldest first."""
        s = self.snap
        wanted = [c for c in s.open_conversations() if s.states[c] == state]
        return self.oldest_first(wanted or s.open_conversations())

    def pending_offers(self) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.snap.offers.items(), key=lambda item: (self.age[item[1]["c"]], item[0]))

    def present(self, agent: str) -> bool:
        """Can the agent act? Connected, or within their grace period (a socket on a process
        that was wrongly declared dead)."""
        return agent in self.snap.node or agent in self.snap.disconnected_at

    def other_agent(self, than: str | None, pick: int) -> str:
        others = [a for a in AGENT_IDS if a != than]
        return others[pick % len(others)]

    def actor(self, who: str, conv: str, pick: int) -> tuple[str | None, bool]:
        """Who acts on an open conversation (None: an administrator), and whether the router
        should let them: its holder, an administrator, or an agent who does not hold it (for
        a queued or offered conversation, everyone; the agent it is offered to, mostly)."""
        holder = self.snap.holder_of.get(conv)
        if who == "admin":
            return None, True
        if who == "holder" and holder is not None:
            return holder, True
        offered = [self.snap.offers[o]["a"] for o in self.snap.offers_for(conv)]
        if who == "holder" and offered:
            return offered[0], False
        return self.other_agent(holder, pick), False

    # Initial state.

    @initialize(
        backlog=st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(CHANNELS))),
        progress=st.sampled_from(["queued", "offered", "accepted", "answered", "transferred"]),
    )
    def opening(self, backlog: list[tuple[str, str]], progress: str) -> None:
        """Start from a random backlog, so that every example has work even when hypothesis
        switches the arrive rule off for it: customers arrive, then are offered and accepted,
        then answered or transferred to another agent, as far as ``progress`` says. The rules'
        own checks and the invariants run after every step of it."""
        for customer, channel in backlog:
            self.arrive(customer, channel, urgent=False)
            self.routing_invariants()
        if progress == "queued":
            return
        self.dispatch()
        self.routing_invariants()
        if progress == "offered":
            return
        for _ in range(len(self.snap.offers)):
            self.accept(pick=0, by_other=False)
            self.routing_invariants()
        if progress == "answered":
            for i in range(len(self.snap.holder_of)):
                self.reply(pick=i, by_holder=True)
                self.routing_invariants()
        if progress == "transferred":
            for _ in range(len(self.snap.holder_of)):
                target = self.other_agent(self.snap.holder_of[self.open_in_state("assigned")[0]], 0)
                self.transfer(state="assigned", pick=0, who="admin", to_queue=None, to_agent=target)
                self.routing_invariants()

    # Customers.

    @rule(customer=st.sampled_from(CUSTOMERS), channel=st.sampled_from(CHANNELS),
          urgent=st.booleans())  # fmt: skip
    def arrive(self, customer: str, channel: str, urgent: bool) -> None:
        """A customer's message: it joins their open conversation on the channel, reopens the
        one closed within the channel's reopen window, or opens one. ``urgent``: a
        classification rule raised the priority, so priorities mix within a queue."""
        # One arrival per millisecond: equal enqueue times would be ordered by the
        # conversations' ids, which are partly random (see oldest_first).
        self.now += 1
        s = self.snap
        field = customer_field(channel, ACCOUNT, customer)
        existing = s.customer_open.get(field)
        closed, _, closed_at = s.last_closed.get(field, "").partition("|")
        window = REOPEN_MS.get(channel, 0)
        reopen = closed if closed and self.now - int(closed_at) <= window else None
        queue = queue_for_channel(channel, QUEUES, QUEUE_NAMES[0])
        priority = QUEUE_SPECS[queue].priority + (4 if urgent else 0)
        message = Message(
            id=new_id("m", self.now),
            direction="in",
            text="投诉: still broken" if urgent else "hi",
            sent_at=datetime.fromtimestamp(self.now / 1000, UTC),
        )
        external_id = self.next_id("ext")
        got = self.run(
            self.router.ingest(
                channel,
                ACCOUNT,
                external_id,
                Customer(id=customer),
                message,
                self.now,
                Placement(queue=queue, priority=priority),
                reopen_within_s=window / 1000,
            )
        )
        conv = got.conversation_id
        assert not got.duplicate
        if existing is not None:
            assert conv == existing and not got.created, (got, existing)
            assert got.state == s.states[conv], (got, s.describe(conv))
            if got.state == "assigned":
                assert got.agent == s.holder_of[conv], got
        elif reopen is not None:
            assert conv == reopen and got.created and got.reopened, (got, reopen)
            assert got.state == "queued", got
            self.first_enqueued[conv] = self.now  # routed afresh, as a new one
        else:
            assert got.created and not got.reopened and got.state == "queued", got
            assert conv not in s.states, f"new conversation {conv} existed before"
            self.first_enqueued[conv] = self.now
            self.age[conv] = len(self.age)
        self.delivered.append((channel, customer, external_id, message, conv))

    # Routing.

    @rule()
    def dispatch(self) -> None:
        before = self.snap
        decisions = self.run(self.router.dispatch(self.now))
        extra: dict[str, int] = {}
        decided = [d.conversation_id for d in decisions]
        assert len(decided) == len(set(decided)), f"one dispatch decided twice: {decisions}"
        after = self.read()
        # When each agent was last assigned work, as the strategies rank them: a pending
        # offer counts from when it was made, and offers made in this call in their order.
        idle = {a: (before.assigned_ms(a), 0) for a in AGENT_IDS}
        for turn, d in enumerate(decisions, 1):
            conv = d.conversation_id
            assert before.states.get(conv) == "queued", f"dispatched {before.describe(conv)}"
            route = before.routes[conv]
            wanted = preferred(before, route, self.now)
            if wanted is not None:
                assert d.agent == wanted, f"{conv} went to {d.agent}, it waits for {wanted}"
            reason = why_not(before, conv, d.agent, self.now, extra)
            assert reason is None, f"{conv} went to {d.agent}, who is {reason}"
            if wanted is None and recent_decline(before, conv, d.agent, self.now) is not None:
                self.seen.add("re-offered to a decliner")
            if wanted is None:
                strategy, chosen = self.strategy_choice(before, conv, idle, extra)
                assert chosen in (None, d.agent), (
                    f"{strategy} gave {conv} to {d.agent}, not {chosen}: last assigned {idle}"
                )
            for f in (f"{d.agent}|{route['c']}", f"{d.agent}|*"):
                extra[f] = extra.get(f, 0) + 1
            idle[d.agent] = (max(idle[d.agent][0], self.now), turn)
            assert d.queue == route["q"] and d.node == before.node.get(d.agent), d
            assert d.enqueued_ms == self.first_enqueued[conv], (d, self.first_enqueued[conv])
            auto = d.agent in AUTO_ACCEPT or QUEUE_SPECS[route["q"]].auto_accept
            assert d.assigned == auto and (d.offer_id is None) == auto, d
            if auto:
                assert after.holder_of.get(conv) == d.agent, after.describe(conv)
                assert after.last_assigned.get(d.agent) == self.now, after.last_assigned
            else:
                assert after.offers.get(d.offer_id or "", {}).get("a") == d.agent, d
                offered = after.pending_offer_times.get(d.agent, {})
                assert offered.get(d.offer_id or "") == self.now, (d, offered)
        for conv in after.open_conversations():
            if after.states[conv] != "queued":
                continue
            wanted = preferred(after, after.routes[conv], self.now)
            if wanted is not None:
                room = fits(after, wanted, after.routes[conv]["c"], {})
                assert not room, f"dispatch left {after.describe(conv)} waiting for {wanted}"
                continue
            takers = [a for a in AGENT_IDS if why_not(after, conv, a, self.now) is None]
            assert not takers, f"dispatch left {after.describe(conv)} waiting for {takers}"

    def strategy_choice(
        self,
        s: RoutingState,
        conv: str,
        idle: dict[str, tuple[int, int]],
        extra: dict[str, int],
    ) -> tuple[str, str | None]:
        """The queue's strategy and the agent it must pick for ``conv`` (None: round_robin,
        whose position per queue the snapshot does not hold), as dispatch.lua ranks them."""
        route = s.routes[conv]
        strategy = QUEUE_SPECS[route["q"]].strategy
        takers = [a for a in AGENT_IDS if why_not(s, conv, a, self.now, extra) is None]
        if strategy == "longest_idle":
            return strategy, min(takers, key=lambda a: (idle[a], a))
        if strategy == "least_loaded":

            def ratio(agent: str) -> float:
                field = f"{agent}|{route['c']}"
                return (s.load.get(field, 0) + extra.get(field, 0)) / s.capacity[field]

            return strategy, min(takers, key=lambda a: (ratio(a), idle[a], a))
        return strategy, None

    @precondition(lambda self: self.snap.offers)
    @rule(pick=picks, by_other=st.sampled_from([False] * 3 + [True]))
    def accept(self, pick: int, by_other: bool) -> None:
        offer_id, o = self.choose(self.pending_offers(), pick)
        if by_other:
            other = self.other_agent(o["a"], pick)
            self.refused("not_yours", self.router.accept(offer_id, other, self.now))
            return
        if not self.present(o["a"]):
            return  # an agent with no socket sends nothing; see check_no_stranded_conversations
        accepted = self.run(self.router.accept(offer_id, o["a"], self.now))
        route = self.snap.routes[o["c"]]
        assert accepted.conversation_id == o["c"], (accepted, o)
        assert (accepted.queue, accepted.channel) == (route["q"], route["c"]), accepted
        assert accepted.enqueued_ms == self.first_enqueued[o["c"]], accepted
        self.gone_offers.append((offer_id, o["a"]))
        # The accept is the agent's latest assignment (a clock never goes back here).
        assert self.read().last_assigned.get(o["a"]) == self.now, self.fresh

    @precondition(lambda self: self.snap.offers)
    @rule(pick=picks, by_other=st.sampled_from([False] * 3 + [True]))
    def decline(self, pick: int, by_other: bool) -> None:
        offer_id, o = self.choose(self.pending_offers(), pick)
        if by_other:
            other = self.other_agent(o["a"], pick)
            self.refused("not_yours", self.router.decline(offer_id, other, self.now))
            return
        released = self.run(self.router.decline(offer_id, o["a"], self.now))
        assert (released.offer_id, released.conversation_id, released.agent) == (
            offer_id,
            o["c"],
            o["a"],
        ), released
        self.gone_offers.append((offer_id, o["a"]))
        after = self.read()
        assert after.states[o["c"]] == "queued", after.describe(o["c"])
        assert after.declined[o["c"]].get(o["a"]) == self.now, after.declined[o["c"]]
        assert after.routes[o["c"]].get("pa") != o["a"], "a decliner stays preferred"
        # A declined offer was no assignment: the agent's last one stays what it was.
        was = self.snap.last_assigned.get(o["a"])
        assert after.last_assigned.get(o["a"]) == was, (was, after.last_assigned)

    # Time and the housekeeping sweeps.

    @rule(ms=st.sampled_from([1, 300, 1_000, 3_000, 6_000]))
    def tick(self, ms: int) -> None:
        self.now += ms

    @rule(sweep=st.sampled_from(["offer timers", "conversation timers", "agents' grace"]))
    def housekeeping(self, sweep: str) -> None:
        if sweep == "offer timers":
            self.expire_offers()
        elif sweep == "conversation timers":
            self.fire_timers()
        else:
            self.expire_agents()

    def expire_offers(self) -> None:
        due = sorted(o for o, v in self.snap.offers.items() if v["d"] <= self.now)
        released = self.run(self.router.expire_offers(self.now))
        assert sorted(r.offer_id for r in released) == due, (released, due)
        for r in sorted(released, key=lambda r: self.age[r.conversation_id]):
            self.gone_offers.append((r.offer_id, r.agent))
        after = self.read()
        for r in released:
            assert after.states[r.conversation_id] == "queued", after.describe(r.conversation_id)
            assert after.declined[r.conversation_id].get(r.agent) == self.now
            assert after.routes[r.conversation_id].get("pa") != r.agent, "still preferred"
            if r.agent_set_away:
                assert after.status[r.agent] == "away" and r.agent not in after.available
                self.seen.add("set away after missed offers")

    def fire_timers(self) -> None:
        before = self.snap
        events = self.run(self.router.fire_timers(self.now))
        after = self.read()
        for e in events:
            conv = e.conversation_id
            assert before.states.get(conv) in ("queued", "assigned"), (e, before.describe(conv))
            if e.kind == "aged":
                was, now = before.routes[conv]["p"], after.routes[conv]["p"]
                assert now == was + 1 == int(e.detail), (e, was, now)

    def expire_agents(self) -> None:
        before = self.snap
        gone = sorted(a for a, t in before.disconnected_at.items() if self.now - t >= GRACE_MS)
        events = self.run(self.router.expire_agents(self.now, GRACE_MS))
        after = self.read()
        assert sorted(e.agent for e in events if e.what == "offline") == gone, (events, gone)
        revoked = sorted((e.agent, e.offer_id) for e in events if e.what == "revoked")
        pending = sorted((o["a"], offer) for offer, o in before.offers.items() if o["a"] in gone)
        assert revoked == pending, (revoked, pending)
        for e in sorted(events, key=lambda e: (e.what, self.age.get(e.conversation_id or "", -1))):
            if e.what == "revoked":
                self.gone_offers.append((e.offer_id or "", e.agent))
                assert after.states[e.conversation_id or ""] == "queued", e
        self.check_agents_gone(before, after, gone, events)

    def check_agents_gone(
        self,
        before: RoutingState,
        after: RoutingState,
        gone: list[str],
        events: list[AgentExpiry],
    ) -> None:
        requeued = sorted((e.agent, e.conversation_id) for e in events if e.what == "requeued")
        taken = sorted(
            (a, c)
            for a in gone
            for c in before.held_by(a)
            if c not in before.first_reply or not KEEPS[before.routes[c]["q"]]
        )
        assert requeued == taken, (requeued, taken)
        problems = check_grace_expiry(before, after, gone, KEEPS)
        assert not problems, "\n".join(problems)

    # Agents.

    @rule(agent=agents, action=agent_actions)
    def agent_status(self, agent: str, action: str) -> None:
        """The agent sets a status, or logs in (again: the new login replaces the old one)."""
        if action.startswith("set "):
            status = action.removeprefix("set ")
            now_available = self.run(self.presence.set_status(agent, status))
            assert now_available == (status == "available" and agent in self.snap.node)
            return
        node = action.removeprefix("log in on ")
        previous = self.conn.get(agent)
        self.conn[agent] = self.next_id(agent)
        got = self.run(self.presence.connect(agent, node, self.conn[agent], "available"))
        assert got.previous_connection == previous, (got, previous)
        kept = self.snap.status.get(agent, "offline")
        assert got.status == ("available" if kept == "offline" else kept), (got, kept)
        if previous is not None:
            self.stale_conns.append((agent, previous))

    @precondition(lambda self: self.conn)
    @rule(pick=picks, how=st.sampled_from(["socket closes"] * 3 + ["process dies"]))
    def disconnect(self, pick: int, how: str) -> None:
        """An agent's socket closes, or the gateway process holding it stops heartbeating and
        another process reaps it (which disconnects every agent on that process)."""
        agent = self.choose(sorted(self.conn), pick)
        if how == "socket closes":
            assert self.run(self.presence.disconnect(agent, self.conn[agent], self.now))
            self.stale_conns.append((agent, self.conn.pop(agent)))
            return
        node = self.snap.node[agent]
        on_it = sorted(a for a, n in self.snap.node.items() if n == node)
        for other in NODES:
            beat = self.now if other != node else self.now - NODE_TTL_MS - 1
            self.run(self.presence.heartbeat(other, beat))
        reaped = self.run(self.presence.reap_dead_nodes(self.now, NODE_TTL_MS))
        assert sorted(reaped) == on_it, (reaped, on_it)
        for gone in reaped:
            self.stale_conns.append((gone, self.conn.pop(gone)))

    @precondition(lambda self: any(a in self.conn for a, _ in self.snap.assignments))
    @rule(pick=picks)
    def agent_drops_for_good(self, pick: int) -> None:
        """An agent holding conversations loses their socket and stays away past the grace
        period; then the sweep runs. The same as disconnect, tick and housekeeping in a row,
        which random sequences reach too rarely for invariant 7 to be tried often."""
        holders = sorted({a for a, _ in self.snap.assignments if a in self.conn})
        agent = self.choose(holders, pick)
        assert self.run(self.presence.disconnect(agent, self.conn[agent], self.now))
        self.stale_conns.append((agent, self.conn.pop(agent)))
        self.now += GRACE_MS
        self.snap = self.read()
        self.expire_agents()

    @precondition(lambda self: self.snap.assignments or self.snap.offers)
    @rule(agent=agents)
    def supervisor_sets_offline(self, agent: str) -> None:
        """A supervisor sets an agent offline: gone for good now, socket or not, as after
        the grace period (the gateway's actions.set_status does both steps)."""
        before = self.snap
        self.run(self.presence.set_status(agent, "offline", "set_by_supervisor"))
        events = self.run(self.router.agent_gone(agent, self.now))
        after = self.read()
        assert [e.agent for e in events if e.what == "offline"] == [agent], events
        revoked = sorted(e.offer_id for e in events if e.what == "revoked")
        pending = sorted(offer for offer, o in before.offers.items() if o["a"] == agent)
        assert revoked == pending, (revoked, pending)
        self.gone_offers.extend((offer, agent) for offer in pending)
        self.check_agents_gone(before, after, [agent], events)

    # Conversations.

    @precondition(lambda self: self.snap.holder_of)
    @rule(pick=picks, by_holder=st.sampled_from([True] * 3 + [False]))
    def reply(self, pick: int, by_holder: bool) -> None:
        conv = self.choose(self.oldest_first(self.snap.holder_of), pick)
        holder = self.snap.holder_of[conv]
        agent = holder if by_holder else self.other_agent(holder, pick)
        message = Message(
            id=new_id("m", self.now),
            direction="out",
            text="on it",
            sent_at=datetime.fromtimestamp(self.now / 1000, UTC),
            author=agent,
        )
        stored = self.router.add_reply(conv, agent, self.next_id("cm"), message, self.now)
        if not by_holder:
            self.refused("not_yours", stored)
            return
        got = self.run(stored)
        assert not got.duplicate and got.first_reply == (conv not in self.snap.first_reply), got

    @precondition(lambda self: self.snap.open_conversations())
    @rule(
        state=open_states,
        pick=picks,
        who=who_acts,
        to_queue=st.sampled_from([None, *QUEUE_NAMES, "nowhere"]),
        to_agent=st.sampled_from([None, *AGENT_IDS]),
    )
    def transfer(
        self, state: str, pick: int, who: str, to_queue: str | None, to_agent: str | None
    ) -> None:
        """Transfer a conversation in ``state`` (or any open one) to a queue (None: its own)
        and/or to an agent, who is then preferred for the offer timeout."""
        s = self.snap
        conv = self.choose(self.open_in_state(state), pick)
        by, allowed = self.actor(who, conv, pick)
        if to_agent is not None and to_agent == by:
            to_agent = None  # the gateway refuses a transfer to oneself
        call = self.router.transfer(conv, by, self.now, to_queue=to_queue, to_agent=to_agent)
        if not allowed:
            self.refused("not_yours", call)
            return
        if s.states[conv] == "offered":
            self.refused("busy", call)
            return
        if to_queue == "nowhere":
            self.refused("unknown_queue", call)
            return
        holder = s.holder_of.get(conv)
        previous = self.run(call)
        assert previous == holder, (previous, s.describe(conv))
        after = self.read()
        route = after.routes[conv]
        target_queue = to_queue or s.routes[conv]["q"]
        assert after.states[conv] == "queued" and route["q"] == target_queue, after.describe(conv)
        assert (route["e"], route["p"]) == (s.routes[conv]["e"], s.routes[conv]["p"]), route
        if holder is not None and holder != to_agent:
            assert after.declined[conv].get(holder) == self.now, after.declined.get(conv)
        if to_agent is not None:
            assert (route.get("pa"), route.get("pu")) == (to_agent, self.now + OFFER_TIMEOUT_MS)
        else:
            assert "pa" not in route, route

    @precondition(lambda self: self.snap.open_conversations())
    @rule(state=open_states, pick=picks, to_queue=st.sampled_from(QUEUE_NAMES),
          urgent=st.booleans())  # fmt: skip
    def replace(self, state: str, pick: int, to_queue: str, urgent: bool) -> None:
        """Place a conversation in ``state`` (or any open one) afresh, as an edited review
        does: only a waiting one moves, with its enqueue time; the same basis again, or an
        offered, assigned or closed conversation, changes nothing."""
        s = self.snap
        conv = self.choose(self.open_in_state(state), pick)
        priority = QUEUE_SPECS[to_queue].priority + (4 if urgent else 0)
        basis = f"{to_queue}|{priority}"
        placement = Placement(queue=to_queue, priority=priority, basis=basis)
        got = self.run(self.router.replace(conv, placement, self.now))
        after = self.read()
        route = s.routes[conv]
        assert got.state == s.states[conv], (got, s.describe(conv))
        if s.states[conv] != "queued" or route.get("pb") == basis:
            assert not got.moved and after.routes[conv] == route, (got, after.describe(conv))
            assert after.queues_holding(conv) == s.queues_holding(conv), after.describe(conv)
            return
        assert got.moved and (got.from_queue, got.to_queue) == (route["q"], to_queue), got
        new = after.routes[conv]
        # Ageing gives the steps the waiting time earned in the new queue.
        ageing_ms = int(QUEUE_SPECS[to_queue].ageing_s * 1000)
        waited = self.now - route.get("w", route["e"])
        earned = max(0, waited) // ageing_ms if ageing_ms else 0
        assert (new["q"], new["e"], new["p"]) == (to_queue, route["e"], min(9, priority + earned))
        assert not {"es", "x"} & set(new), new
        assert after.queues_holding(conv) == [to_queue], after.describe(conv)

    @precondition(lambda self: self.snap.open_conversations())
    @rule(state=open_states, pick=picks, who=who_acts)
    def close(self, state: str, pick: int, who: str) -> None:
        """Close a conversation in ``state`` (or any open one)."""
        s = self.snap
        conv = self.choose(self.open_in_state(state), pick)
        by, allowed = self.actor(who, conv, pick)
        if not allowed:
            self.refused("not_yours", self.router.close(conv, by, self.now))
            return
        outcome = self.run(self.router.close(conv, by, self.now))
        offered = [s.offers[o]["a"] for o in s.offers_for(conv)]
        assert outcome.previous_state == s.states[conv], (outcome, s.describe(conv))
        assert outcome.agent == s.holder_of.get(conv), (outcome, s.describe(conv))
        assert outcome.offered_to == (offered[0] if offered else None), outcome
        if outcome.offer_id is not None:
            self.gone_offers.append((outcome.offer_id, outcome.offered_to or ""))

    # Requests that come again or come late. One rule for all of them, so that together they
    # take no more of the steps than one ordinary operation.

    @rule(
        kind=st.sampled_from(
            ["redeliver", "accept_gone", "decline_gone", "close_closed", "late_disconnect"]
        ),
        pick=picks,
    )
    def late_or_repeated(self, kind: str, pick: int) -> None:
        if kind == "redeliver" and self.delivered:
            # The channel sends a message again (WeChat retry, IMAP refetch): one message.
            channel, customer, external_id, message, conv = self.choose(self.delivered, pick)
            queue = queue_for_channel(channel, QUEUES, QUEUE_NAMES[0])
            got = self.run(
                self.router.ingest(
                    channel,
                    ACCOUNT,
                    external_id,
                    Customer(id=customer),
                    message,
                    self.now,
                    Placement(queue=queue, priority=0),
                    reopen_within_s=REOPEN_MS.get(channel, 0) / 1000,
                )
            )
            assert got.duplicate and got.conversation_id == conv, got
            assert got.message.id == message.id, got
        elif kind in ("accept_gone", "decline_gone") and self.gone_offers:
            # An answer to an offer that was already accepted, declined, timed out or closed.
            offer_id, agent = self.choose(self.gone_offers, pick)
            if kind == "accept_gone":
                self.refused("unknown_offer", self.router.accept(offer_id, agent, self.now))
            else:
                self.refused("unknown_offer", self.router.decline(offer_id, agent, self.now))
        elif kind == "close_closed":
            closed = self.oldest_first(c for c, s in self.snap.states.items() if s == "closed")
            if closed:
                conv = self.choose(closed, pick)
                agent = AGENT_IDS[pick % len(AGENT_IDS)] if pick % 2 else None
                self.refused("unknown_conversation", self.router.close(conv, agent, self.now))
        elif kind == "late_disconnect" and self.stale_conns:
            # A replaced or reaped connection closes late: it must not unregister anything.
            agent, connection = self.choose(self.stale_conns, pick)
            assert not self.run(self.presence.disconnect(agent, connection, self.now))

    # After every step.

    @invariant()
    def routing_invariants(self) -> None:
        before, self.snap = self.snap, self.fresh or self.read()
        self.seen |= situations(before, self.snap)
        problems = check_all(self.snap, self.first_enqueued)
        if set(self.snap.node) != set(self.conn):
            problems.append(f"model: connected {sorted(self.conn)}, Redis {self.snap.node}")
        assert not problems, "\n".join(problems)


@pytest.mark.timeout(600)  # shrinking a failure replays hundreds of sequences
def test_routing_invariants_hold_for_random_operation_sequences(
    redis_server: RedisServer,
) -> None:
    RoutingMachine.redis_url = redis_server.url
    run_state_machine_as_test(
        RoutingMachine,
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# The checks themselves: each sees a state broken the way a faulty script would break it.


async def routed_state(redis: Any, tenant: str) -> tuple[Router, dict[str, str]]:
    """alice holds one web chat, has another offered; a third waits (alice is full)."""
    core = with_defaults(
        CoreConfig(agents=[AGENTS[0]], queues=[QUEUES[0]], routing=RoutingConfig())
    )
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    presence = Presence(redis, tenant)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    await presence.connect("alice", "node-1", "conn-1", "available")
    convs = {}
    for i, name in enumerate(["held", "offered", "waiting"]):
        message = Message(
            id=f"m{i}", direction="in", text="hi", sent_at=datetime.fromtimestamp(0, UTC)
        )
        got = await router.ingest(
            "webchat",
            ACCOUNT,
            f"x{i}",
            Customer(id=name),
            message,
            START_MS + i,
            Placement(queue="chat", priority=1),
        )
        convs[name] = got.conversation_id
    first, _ = await router.dispatch(START_MS + 10)
    await router.accept(first.offer_id or "", "alice", START_MS + 11)
    return router, convs


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        ("load", "inv2: load of alice|webchat is 3, but it holds or is offered 2"),
        ("second holder", "inv1: held conversation is held by 2 agents"),
        ("also queued", "inv5: assigned held conversation should be in exactly one place"),
        ("lost from queue", "inv5: queued waiting conversation should be in exactly one place"),
        ("timer lost", "inv5: pending offer"),
        ("score", "inv6: waiting conversation sits in queue chat with score"),
        ("enqueue time", "inv7: waiting conversation was first enqueued at"),
        ("holder gone", "inv7: unanswered held conversation is held by 'alice', who is neither"),
        ("available", "presence: bob is in the available set"),
        ("offer uncounted", "idle: alice's pending offer"),
        ("answered offer counted", "idle: alice's offer gone.1 still counts"),
    ],
)
async def test_the_checks_see_a_broken_state(
    redis: Any, tenant: str, corrupt: str, expected: str
) -> None:
    router, convs = await routed_state(redis, tenant)
    k, a = router.keys, router.agent_keys
    first_enqueued = {convs["held"]: START_MS, convs["offered"]: START_MS + 1}
    first_enqueued[convs["waiting"]] = START_MS + 2
    state = await read_state(redis, tenant, QUEUE_NAMES)
    assert check_all(state, first_enqueued) == []
    if corrupt == "load":
        await redis.hincrby(a.load, "alice|webchat", 1)
    elif corrupt == "second holder":
        await redis.zadd(k.assignments, {"bob\0" + convs["held"]: 0})
    elif corrupt == "also queued":
        await redis.zadd(k.queue("chat"), {convs["held"]: 1})
    elif corrupt == "lost from queue":
        await redis.zrem(k.queue("chat"), convs["waiting"])
    elif corrupt == "timer lost":
        await redis.delete(k.offer_timers)
    elif corrupt == "score":
        await redis.zadd(k.queue("chat"), {convs["waiting"]: 5})
    elif corrupt == "enqueue time":
        route = await router.route(convs["waiting"])
        assert route is not None
        late = msgspec.structs.replace(route, enqueued_ms=START_MS + 99)
        await redis.hset(k.route, convs["waiting"], encode_route(late))
    elif corrupt == "holder gone":
        await redis.hdel(a.node, "alice")
        await redis.srem(a.available, "alice")
    elif corrupt == "available":
        await redis.sadd(a.available, "bob")
    elif corrupt == "offer uncounted":
        await redis.hdel(a.last_assigned, "alice|offers")
    elif corrupt == "answered offer counted":
        offered = json.loads(await redis.hget(a.last_assigned, "alice|offers"))
        await redis.hset(a.last_assigned, "alice|offers", json.dumps({**offered, "gone.1": 5}))
    problems = check_all(await read_state(redis, tenant, QUEUE_NAMES), first_enqueued)
    names = {conv: f"{name} conversation" for name, conv in convs.items()}
    readable = [" ".join(names.get(word, word) for word in p.split(" ")) for p in problems]
    assert any(expected in p for p in readable), problems


# A bug the machine's author found: follow-ups ranked in the wrong queue.


async def test_a_follow_up_message_reports_the_position_in_its_conversations_queue(
    redis: Any, tenant: str
) -> None:
    core = with_defaults(CoreConfig(queues=[QUEUES[0], QUEUES[1]], routing=RoutingConfig()))
    router = Router(redis, tenant, core.queues, core.routing, core.routing.default_queue)
    await router.sync_queues()

    async def message(n: int) -> Any:
        sent = Message(id=f"m{n}", direction="in", text="hi", sent_at=datetime.now(UTC))
        chat = Placement(queue="chat", priority=1)
        return await router.ingest("webchat", ACCOUNT, f"x{n}", Customer(id="u"), sent, n, chat)

    first = await message(1)
    await router.transfer(first.conversation_id, None, 2, to_queue="mail")
    again = await message(3)
    assert again.state == "queued"
    assert (again.queue, again.queue_position) == ("mail", 1)
