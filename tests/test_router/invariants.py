"""Read a tenant's whole routing state from Redis and check docs/design.md's invariants on it.

``read_state`` takes one consistent snapshot (a MULTI/EXEC of reads, so no script runs in the
middle of it) and each ``check_*`` function returns readable violation messages, an empty
list when the invariant holds. The property tests (test_invariants.py) call them after every
step; concurrency tests with several gateway processes can call them on a quiet system, or at
any moment, since a snapshot is atomic:

    state = await read_state(redis, tenant)
    assert not (problems := check_all(state)), "\\n".join(problems)

The checks read Redis, not a model: they are only as good as the key layout they know
(docs/design.md, router/keys.py, presence/keys.py). Keep them in step with it. A new check
is a function of a RoutingState returning messages, added to STATE_CHECKS.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from test_router.index_check import check_agent_index

from presence.keys import PresenceKeys
from router.engine import queue_score
from router.keys import RouterKeys

OPEN_STATES = ("queued", "offered", "assigned")
STATES = (*OPEN_STATES, "closed")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _texts(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


@dataclass
class RoutingState:
    """Everything the router and presence keep in Redis for one tenant, decoded."""

    tenant: str
    states: dict[str, str]  # conversation -> queued | offered | assigned | closed
    routes: dict[str, dict[str, Any]]  # conversation -> {q, c, p, e, k, ...} (docs/design.md)
    bad_routes: dict[str, str]  # conversation -> raw route that is not JSON
    offer_of: dict[str, str]  # conversation -> pending offer id
    holder_of: dict[str, str]  # conversation -> agent holding it
    offers: dict[str, dict[str, Any]]  # offer id -> {c, a, d}
    timers: dict[str, float]  # offer id -> due ms
    assignments: list[tuple[str, str]]  # (agent, conversation), from the lex zset
    queues: dict[str, list[tuple[str, float]]]  # queue name -> [(conversation, score)] in order
    load: dict[str, int]  # "agent|channel" -> load; "agent|*" -> the agent's total load
    capacity: dict[str, int]  # "agent|channel" -> capacity; "agent|*" -> the optional total cap
    first_reply: dict[str, int]  # conversation -> ms of the first agent reply
    conv_timers: dict[str, float]  # "kind|conversation" -> due ms (escalation, ageing, idle...)
    declined: dict[str, dict[str, float]]  # conversation -> {agent: ms}
    customer_open: dict[str, str]  # "channel|account|customer" -> open conversation
    last_closed: dict[str, str]  # the same customer field -> "conversation|ms" of the last close
    status: dict[str, str]  # agent -> chosen status
    available: set[str]
    node: dict[str, str]  # agent -> node holding their socket
    disconnected_at: dict[str, int]  # agent -> ms
    last_assigned: dict[str, int]  # agent -> ms of their last assignment (accept or direct)
    pending_offer_times: dict[str, dict[str, int]]  # agent -> {pending offer id: ms offered}
    skills: dict[str, dict[str, Any]] = field(default_factory=dict)  # agent -> {skill: level}
    queue_config: dict[str, dict[str, Any]] = field(default_factory=dict)  # queue -> rules
    agent_index: set[str] = field(default_factory=set)  # the agent index's members

    def open_conversations(self) -> list[str]:
        return sorted(c for c, s in self.states.items() if s != "closed")

    def offers_for(self, conversation: str) -> list[str]:
        return sorted(o for o, v in self.offers.items() if v.get("c") == conversation)

    def held_by(self, agent: str) -> list[str]:
        return sorted(c for a, c in self.assignments if a == agent)

    def queues_holding(self, conversation: str) -> list[str]:
        return sorted(q for q, members in self.queues.items() if conversation in dict(members))

    def channel_of(self, conversation: str) -> str | None:
        route = self.routes.get(conversation)
        return None if route is None else route.get("c")

    def connected(self, agent: str) -> bool:
        return agent in self.node

    def assigned_ms(self, agent: str) -> int:
        """When the agent was last assigned work, as longest_idle and the tie-breaks rank
        them: their last assignment, or a later offer still pending."""
        pending = self.pending_offer_times.get(agent, {}).values()
        return max([self.last_assigned.get(agent, 0), *pending])

    def describe(self, conversation: str) -> str:
        """One line about a conversation, for violation messages."""
        return (
            f"{conversation} [state={self.states.get(conversation)!r} "
            f"route={self.routes.get(conversation)} holder={self.holder_of.get(conversation)!r} "
            f"offer={self.offer_of.get(conversation)!r} offers={self.offers_for(conversation)} "
            f"queues={self.queues_holding(conversation)}]"
        )


async def read_state(
    redis: Any, tenant: str, queue_names: Iterable[str] | None = None
) -> RoutingState:
    """One atomic snapshot of the tenant's routing state.

    Queues: the names given; by default every queue in the queue config hash and every
    ``queue:<name>`` key that exists (found with SCAN over the whole keyspace, so slower on a
    busy server), so that a conversation left in a queue nobody thought of is still seen.
    """
    presence = PresenceKeys(tenant)
    if queue_names is not None:
        names = set(queue_names)
    else:
        names = {_text(n) for n in await redis.hkeys(RouterKeys(tenant, []).queue_config)}
        queue_prefix = RouterKeys(tenant, []).queue("")
        async for key in redis.scan_iter(match=queue_prefix + "*", count=1000):
            names.add(_text(key)[len(queue_prefix) :])
    keys = RouterKeys(tenant, sorted(names))

    async with redis.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.state)
        pipe.hgetall(keys.route)
        pipe.hgetall(keys.offer_of)
        pipe.hgetall(keys.agent_of)
        pipe.hgetall(keys.offers)
        pipe.zrange(keys.offer_timers, 0, -1, withscores=True)
        pipe.zrange(keys.assignments, 0, -1)
        pipe.hgetall(presence.load)
        pipe.hgetall(presence.capacity)
        pipe.hgetall(keys.first_reply)
        pipe.hgetall(keys.declined)
        pipe.hgetall(keys.customer_open)
        pipe.hgetall(presence.status)
        pipe.smembers(presence.available)
        pipe.hgetall(presence.node)
        pipe.hgetall(presence.disconnected_at)
        pipe.zrange(keys.timers, 0, -1, withscores=True)
        pipe.hgetall(keys.last_closed)
        pipe.hgetall(presence.last_assigned)
        pipe.hgetall(presence.skills)
        pipe.hgetall(keys.queue_config)
        pipe.zrange(presence.agent_index, 0, -1)
        for key in keys.queue_keys:
            pipe.zrange(key, 0, -1, withscores=True)
        raw = await pipe.execute()

    (
        states,
        raw_routes,
        offer_of,
        holder_of,
        raw_offers,
        timers,
        assignments,
        load,
        capacity,
        first_reply,
        declined,
        customer_open,
        status,
        available,
        node,
        disconnected_at,
        conv_timers,
        last_closed,
        raw_last_assigned,
        skills,
        queue_config,
        agent_index,
    ) = raw[:22]
    routes: dict[str, dict[str, Any]] = {}
    bad_routes: dict[str, str] = {}
    for conv, value in _texts(raw_routes).items():
        try:
            routes[conv] = json.loads(value)
        except ValueError:
            bad_routes[conv] = value
    pairs = []
    for member in map(_text, assignments):
        agent, _, conv = member.partition("\0")
        pairs.append((agent, conv))
    last_assigned: dict[str, int] = {}
    pending_offer_times: dict[str, dict[str, int]] = {}
    for f, v in _texts(raw_last_assigned).items():
        agent, sep, what = f.rpartition("|")
        if sep and what == "offers":
            pending_offer_times[agent] = {o: int(ms) for o, ms in json.loads(v).items()}
        else:
            last_assigned[f] = int(v)
    return RoutingState(
        tenant=tenant,
        states=_texts(states),
        routes=routes,
        bad_routes=bad_routes,
        offer_of=_texts(offer_of),
        holder_of=_texts(holder_of),
        offers={o: json.loads(v) for o, v in _texts(raw_offers).items()},
        timers={_text(o): float(s) for o, s in timers},
        assignments=pairs,
        queues={
            name: [(_text(c), float(s)) for c, s in members]
            for name, members in zip(keys.queue_names, raw[22:], strict=True)
        },
        load={f: int(v) for f, v in _texts(load).items()},
        capacity={f: int(v) for f, v in _texts(capacity).items()},
        first_reply={c: int(v) for c, v in _texts(first_reply).items()},
        conv_timers={_text(m): float(s) for m, s in conv_timers},
        declined={c: json.loads(v) for c, v in _texts(declined).items()},
        customer_open=_texts(customer_open),
        last_closed=_texts(last_closed),
        status=_texts(status),
        available={_text(a) for a in available},
        node=_texts(node),
        disconnected_at={a: int(v) for a, v in _texts(disconnected_at).items()},
        last_assigned=last_assigned,
        pending_offer_times=pending_offer_times,
        skills={a: json.loads(v) for a, v in _texts(skills).items()},
        queue_config={q: json.loads(v) for q, v in _texts(queue_config).items()},
        agent_index={_text(m) for m in agent_index},
    )


# Invariant 1: at most one holder, at most one pending offer, never both.


def check_one_holder_one_offer(s: RoutingState) -> list[str]:
    problems = []
    holders: dict[str, list[str]] = defaultdict(list)
    for agent, conv in s.assignments:
        holders[conv].append(agent)
    offers: dict[str, list[str]] = defaultdict(list)
    for offer_id, o in s.offers.items():
        offers[o.get("c", "?")].append(f"{offer_id} to {o.get('a')!r}")
    for conv in sorted(set(holders) | set(offers) | set(s.holder_of) | set(s.offer_of)):
        held = holders.get(conv, [])
        if len(held) > 1:
            problems.append(f"inv1: {conv} is held by {len(held)} agents {sorted(held)}")
        pending = offers.get(conv, [])
        if len(pending) > 1:
            problems.append(f"inv1: {conv} has {len(pending)} pending offers {sorted(pending)}")
        agent = s.holder_of.get(conv)
        if agent is not None and held != [agent]:
            problems.append(
                f"inv1: conv:agent says {conv} is held by {agent!r}, assignments say {held}"
            )
        if agent is None and held:
            problems.append(f"inv1: assignments say {conv} is held by {held}, conv:agent by nobody")
        offer_id = s.offer_of.get(conv)
        if offer_id is not None:
            o = s.offers.get(offer_id)
            if o is None:
                problems.append(f"inv1: conv:offer of {conv} is {offer_id}, which is not pending")
            elif o.get("c") != conv:
                problems.append(f"inv1: conv:offer of {conv} is {offer_id}, an offer for {o}")
        if (held or agent is not None) and (pending or offer_id is not None):
            problems.append(f"inv1: {s.describe(conv)} is both assigned and offered")
    return problems


# Invariant 2: load = assignments + pending offers, per agent and channel and in total
# ("agent|*"); 0 <= load <= capacity (a missing channel capacity is 0, a missing total cap is
# no cap). A capacity lowered by a configuration reload can legitimately sit below the load
# until conversations close: compare with the capacity the test configured.


def expected_loads(s: RoutingState) -> tuple[Counter[str], dict[str, list[str]]]:
    """("agent|channel" and "agent|*" -> number of conversations held or offered, and which)."""
    counts: Counter[str] = Counter()
    which: dict[str, list[str]] = defaultdict(list)

    def count(agent: str, conv: str, what: str) -> None:
        for f in (f"{agent}|{s.channel_of(conv)}", f"{agent}|*"):
            counts[f] += 1
            which[f].append(f"{conv} ({what})")

    for agent, conv in s.assignments:
        count(agent, conv, "assigned")
    for offer_id, o in s.offers.items():
        count(o.get("a", "?"), o.get("c", "?"), f"offer {offer_id}")
    return counts, which


def check_capacity(s: RoutingState) -> list[str]:
    problems = []
    counts, which = expected_loads(s)
    for f in sorted(set(s.load) | set(counts)):
        load, expected = s.load.get(f, 0), counts.get(f, 0)
        held = sorted(which.get(f, []))
        if load != expected:
            problems.append(
                f"inv2: load of {f} is {load}, but it holds or is offered {expected}: {held}"
            )
        if load < 0:
            problems.append(f"inv2: load of {f} is negative ({load})")
        total = f.endswith("|*")
        capacity = s.capacity.get(f, None if total else 0)
        if capacity is not None and max(load, expected) > capacity:
            what = "total capacity" if total else "capacity"
            problems.append(f"inv2: {f} carries {max(load, expected)} > {what} {capacity}: {held}")
    return problems


# Invariant 5: every open conversation in exactly one place; queues hold only queued ones;
# one timer per pending offer.


def check_one_place(s: RoutingState) -> list[str]:
    problems = []
    for conv, value in s.bad_routes.items():
        problems.append(f"inv5: route of {conv} is not JSON: {value!r}")
    in_queues: dict[str, list[str]] = defaultdict(list)
    for name, members in s.queues.items():
        for conv, _ in members:
            in_queues[conv].append(name)
    for conv in sorted(set(s.states) | set(in_queues)):
        state = s.states.get(conv)
        if state not in STATES:
            problems.append(f"inv5: {conv} has unknown state {state!r}: {s.describe(conv)}")
            continue
        places = []
        if conv in s.holder_of or any(c == conv for _, c in s.assignments):
            places.append("assigned")
        if conv in s.offer_of or s.offers_for(conv):
            places.append("offered")
        places += [f"queue {q}" for q in in_queues.get(conv, [])]
        if state == "closed":
            if places:
                problems.append(f"inv5: closed {conv} is still {places}: {s.describe(conv)}")
            continue
        route = s.routes.get(conv)
        if route is None:
            problems.append(f"inv5: open {conv} has no route: {s.describe(conv)}")
            continue
        expected = f"queue {route.get('q')}" if state == "queued" else state
        if places != [expected]:
            problems.append(
                f"inv5: {state} {conv} should be in exactly one place ({expected}), "
                f"is in {places or 'none'}: {s.describe(conv)}"
            )
    for offer_id, o in sorted(s.offers.items()):
        if s.offer_of.get(o.get("c", "")) != offer_id:
            problems.append(
                f"inv5: offer {offer_id} {o} is not the conversation's current offer "
                f"(conv:offer = {s.offer_of.get(o.get('c', ''))!r})"
            )
        if offer_id not in s.timers:
            problems.append(f"inv5: pending offer {offer_id} {o} has no timer")
        elif s.timers[offer_id] != float(o.get("d", -1)):
            problems.append(
                f"inv5: timer of offer {offer_id} is due at {s.timers[offer_id]:.0f}, "
                f"the offer says {o.get('d')}"
            )
    for offer_id in sorted(set(s.timers) - set(s.offers)):
        problems.append(f"inv5: timer {offer_id} (due {s.timers[offer_id]:.0f}) has no offer")
    return problems


IDLE_TIMERS = ("idle", "idle2")
WAITING_TIMERS = ("esc", "age", "max")
# A re-offer to a decliner that dispatch waits for; it may outlive the wait (the conversation
# offered or assigned meanwhile) until it fires, and then does nothing.
REOFFER_TIMERS = ("reoffer",)


def check_conversation_timers(s: RoutingState) -> list[str]:
    """Invariant 5, the conversations' own timers: each belongs to an open conversation, and
    the inactivity ones to an assigned one (nothing is left to fire for a closed one)."""
    problems = []
    for member, due in sorted(s.conv_timers.items()):
        kind, _, conv = member.partition("|")
        state = s.states.get(conv)
        if kind not in IDLE_TIMERS + WAITING_TIMERS + REOFFER_TIMERS:
            problems.append(f"inv5: timer {member!r} (due {due:.0f}) is of an unknown kind")
        elif state not in OPEN_STATES:
            problems.append(f"inv5: timer {member!r} (due {due:.0f}) is for a {state} conversation")
        elif kind in IDLE_TIMERS and state != "assigned":
            problems.append(
                f"inv5: inactivity timer {member!r} (due {due:.0f}) for a {state} conversation"
            )
    return problems


def check_customer_index(s: RoutingState) -> list[str]:
    """customer:open points at open conversations only, and each open conversation's
    customer points back at it (so a customer has one open conversation per channel); the
    last closed conversation (the one a message may reopen) is closed."""
    problems = []
    for field_, conv in sorted(s.customer_open.items()):
        if s.states.get(conv, "closed") == "closed":
            problems.append(f"customer: {field_} points at {conv}, which is not open")
    for conv in s.open_conversations():
        k = s.routes.get(conv, {}).get("k")
        if k is not None and s.customer_open.get(k) != conv:
            problems.append(
                f"customer: open {conv} belongs to {k}, which points at {s.customer_open.get(k)!r}"
            )
    for field_, value in sorted(s.last_closed.items()):
        conv = value.partition("|")[0]
        if s.states.get(conv) != "closed":
            problems.append(
                f"customer: the last closed conversation of {field_} is {conv}, which is "
                f"{s.states.get(conv)!r}"
            )
    return problems


# Invariant 6: within each queue, higher priority first, then earliest enqueue (then id).


def queue_order_key(route: Mapping[str, Any], conversation: str) -> tuple[int, int, str]:
    return (-min(max(int(route.get("p", 0)), 0), 9), int(route.get("e", 0)), conversation)


def check_queue_order(s: RoutingState) -> list[str]:
    problems = []
    for name, members in sorted(s.queues.items()):
        routed = [(c, score) for c, score in members if c in s.routes]
        for conv, score in routed:
            route = s.routes[conv]
            expected = queue_score(int(route.get("p", 0)), int(route.get("e", 0)))
            if score != expected:
                problems.append(
                    f"inv6: {conv} sits in queue {name} with score {score:.0f}, its route "
                    f"(p={route.get('p')}, e={route.get('e')}) gives {expected}"
                )
        actual = [c for c, _ in routed]
        wanted = sorted(actual, key=lambda c: queue_order_key(s.routes[c], c))
        if actual != wanted:
            first = next(i for i, (a, w) in enumerate(zip(actual, wanted, strict=True)) if a != w)
            problems.append(
                f"inv6: queue {name} is out of order at position {first}: "
                f"{[(c, s.routes[c].get('p'), s.routes[c].get('e')) for c in actual]}"
            )
    return problems


# Invariant 7 (state part): an unanswered conversation is held only by an agent who is
# connected or still within their grace period; the sweep takes the rest back.


def check_no_stranded_conversations(s: RoutingState) -> list[str]:
    problems = []
    for agent, conv in s.assignments:
        if conv in s.first_reply or s.connected(agent) or agent in s.disconnected_at:
            continue
        problems.append(
            f"inv7: unanswered {conv} is held by {agent!r}, who is neither connected nor in "
            f"a grace period (status {s.status.get(agent)!r}): nothing will requeue it"
        )
    return problems


def check_enqueue_times(s: RoutingState, first_enqueued: Mapping[str, int]) -> list[str]:
    """Invariants 6 and 7: a conversation keeps its original enqueue time while it is open,
    whatever happens to it (declines, timeouts, transfers, grace expiry). ``first_enqueued``
    is what the caller saw when each conversation was opened or reopened."""
    problems = []
    for conv, e in sorted(first_enqueued.items()):
        if s.states.get(conv) in OPEN_STATES:
            actual = s.routes.get(conv, {}).get("e")
            if actual != e:
                problems.append(
                    f"inv7: {conv} was first enqueued at {e}, its route now says {actual}: "
                    f"{s.describe(conv)}"
                )
    return problems


def check_grace_expiry(
    before: RoutingState,
    after: RoutingState,
    expired_agents: Iterable[str],
    keeps: Mapping[str, bool],
) -> list[str]:
    """Invariant 7 across one grace-expiry sweep (``before`` and ``after`` it), or a
    supervisor setting agents offline: each gone agent's conversations are back in their
    queue with the same priority and enqueue time, but for the answered ones of queues that
    keep them for the agent (``keeps``: queue -> on_agent_gone is "keep"), which are still
    theirs; and the agent is offline."""
    problems = []
    for agent in sorted(set(expired_agents)):
        if after.status.get(agent) != "offline" or agent in after.available:
            problems.append(
                f"inv7: {agent} passed the grace period but is {after.status.get(agent)!r}, "
                f"available={agent in after.available}"
            )
        for conv in before.held_by(agent):
            if after.states.get(conv) == "closed":
                continue
            if conv in before.first_reply and keeps.get(before.routes[conv]["q"], False):
                if after.holder_of.get(conv) != agent:
                    problems.append(
                        f"inv7: answered {conv} was taken from {agent} at grace expiry: "
                        f"{after.describe(conv)}"
                    )
            else:
                route = before.routes.get(conv, {})
                queued_in = after.queues_holding(conv)
                if after.states.get(conv) != "queued" or queued_in != [route.get("q")]:
                    problems.append(
                        f"inv7: {conv} of {agent} is not back in queue "
                        f"{route.get('q')}: {after.describe(conv)}"
                    )
                kept = {k: after.routes.get(conv, {}).get(k) for k in ("q", "p", "e")}
                if kept != {k: route.get(k) for k in ("q", "p", "e")}:
                    problems.append(
                        f"inv7: the queue, priority or enqueue time of {conv} changed at grace "
                        f"expiry: {route} -> {after.routes.get(conv)}"
                    )
    return problems


# Longest idle: the last-assigned hash lists each agent's pending offers, exactly, so that an
# offer counts as an assignment while it is pending and stops counting once it is answered,
# times out or is taken back (docs/routing.md, "Strategies").


def check_pending_offer_times(s: RoutingState) -> list[str]:
    problems = []
    actual = {(a, o) for a, offers in s.pending_offer_times.items() for o in offers}
    expected = {(o.get("a", "?"), offer_id) for offer_id, o in s.offers.items()}
    for agent, offer_id in sorted(actual - expected):
        problems.append(
            f"idle: {agent}'s offer {offer_id} still counts as their last assignment, but it "
            f"is not pending ({s.offers.get(offer_id)})"
        )
    for agent, offer_id in sorted(expected - actual):
        problems.append(
            f"idle: {agent}'s pending offer {offer_id} does not count as their last assignment"
        )
    for agent, offers in sorted(s.pending_offer_times.items()):
        if not offers:
            problems.append(f"idle: {agent} has an empty list of pending offers")
    return problems


# Presence: the available set is exactly the connected agents whose status is available.


def check_presence(s: RoutingState) -> list[str]:
    problems = []
    should = {a for a in s.node if s.status.get(a) == "available"}
    for agent in sorted(s.available - should):
        problems.append(
            f"presence: {agent} is in the available set but is "
            f"{'connected' if agent in s.node else 'not connected'} with status "
            f"{s.status.get(agent)!r}"
        )
    for agent in sorted(should - s.available):
        problems.append(f"presence: {agent} is connected and available but not in the set")
    for agent in sorted(set(s.node) & set(s.disconnected_at)):
        problems.append(f"presence: {agent} is connected and also in a grace period")
    return problems


STATE_CHECKS: tuple[Callable[[RoutingState], list[str]], ...] = (
    check_one_holder_one_offer,
    check_capacity,
    check_one_place,
    check_conversation_timers,
    check_customer_index,
    check_queue_order,
    check_no_stranded_conversations,
    check_pending_offer_times,
    check_presence,
    check_agent_index,
)


def check_all(s: RoutingState, first_enqueued: Mapping[str, int] | None = None) -> list[str]:
    """Every state check; with ``first_enqueued`` also the enqueue-time check."""
    problems = [p for check in STATE_CHECKS for p in check(s)]
    if first_enqueued is not None:
        problems += check_enqueue_times(s, first_enqueued)
    return problems


async def assert_invariants(
    redis: Any,
    tenant: str,
    queue_names: Iterable[str] | None = None,
    first_enqueued: Mapping[str, int] | None = None,
) -> RoutingState:
    """Read a snapshot, raise AssertionError listing every violation, return the snapshot."""
    state = await read_state(redis, tenant, queue_names)
    problems = check_all(state, first_enqueued)
    if problems:
        raise AssertionError(
            f"{len(problems)} routing invariant violation(s) in tenant {tenant}:\n  "
            + "\n  ".join(problems)
        )
    return state
