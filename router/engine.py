"""The router: every routing decision is one Lua call on Redis, so any number of gateway
processes can route the same queues without double offers or capacity overruns."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from adapters.model import Customer, Message
from presence.keys import PresenceKeys
from presence.lua import Scripts
from router.config import QueueConfig, RoutingConfig
from router.ids import new_id
from router.keys import RouterKeys, customer_field
from router.models import ConversationMeta
from router.reads import RouterReads, text
from router.results import (
    Accepted,
    AgentExpiry,
    ClosedOutcome,
    Ingested,
    OfferMade,
    Placement,
    Released,
    Replaced,
    ReplyStored,
    RoutingError,
    TimerEvent,
)
from router.route import Route, decode_route, encode_route
from router.scripts import CONTRACTS

_encode = msgspec.msgpack.Encoder().encode

# How far a timer whose follow-up the caller does is pushed ahead while it works.
LEASE_MS = 5_000


def queue_score(priority: int, enqueued_ms: int) -> int:
    """Must match queue_score in lua/_common.lua."""
    return (9 - min(max(priority, 0), 9)) * 10**13 + enqueued_ms


def refuse(reply: list[Any], **refusals: tuple[str, str]) -> None:
    """Raise the RoutingError (code, detail) a script's refusal (its first item) stands for."""
    refusal = refusals.get(text(reply[0]))
    if refusal is not None:
        raise RoutingError(*refusal)


def _conversation_refusals(conversation_id: str) -> dict[str, tuple[str, str]]:
    return {
        "gone": ("unknown_conversation", f"no open conversation {conversation_id}"),
        "not_yours": ("not_yours", f"conversation {conversation_id} is not yours"),
    }


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _without_nulls(value: Any) -> Any:
    """Lua's cjson turns JSON null into a userdata that is truthy: leave nulls out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def queue_rules(queue: QueueConfig) -> dict[str, Any]:
    """What the scripts need to know of a queue, stored as JSON in the queue config hash."""
    return _without_nulls(
        {
            "skills": queue.skills,
            "strategy": queue.strategy,
            "auto_accept": queue.auto_accept,
            "overflow": queue.overflow,
            "escalation": [
                {
                    "after_ms": _ms(step.after_s),
                    "skills": step.skills,
                    "relax": step.relax_skills,
                    "overflow": step.overflow,
                    "raise": step.raise_priority,
                }
                for step in queue.escalation
            ],
            "ageing_ms": _ms(queue.ageing_s),
            "max_wait_ms": _ms(queue.max_wait_s),
            "after_max_wait": queue.after_max_wait,
            "idle_warn_ms": _ms(queue.inactivity_warn_s),
            "idle_close_ms": _ms(queue.inactivity_close_s),
        }
    )


def waiting_timers(queue: QueueConfig, enqueued_ms: int) -> list[str | int]:
    """The timers a new conversation in this queue starts with: kind, due ms, ..."""
    timers: list[str | int] = []
    if queue.escalation:
        timers += ["esc", enqueued_ms + _ms(queue.escalation[0].after_s)]
    if queue.ageing_s > 0:
        timers += ["age", enqueued_ms + _ms(queue.ageing_s)]
    if queue.max_wait_s > 0 and queue.after_max_wait != "none":
        timers += ["max", enqueued_ms + _ms(queue.max_wait_s)]
    return timers


def _replaced(reply: list[str]) -> Replaced:
    """The replace script's answer as a result."""
    outcome, rest = reply[0], reply[1:]
    if outcome == "moved":
        return Replaced(moved=True, state="queued", from_queue=rest[0], to_queue=rest[1])
    state = "queued" if outcome == "unchanged" else outcome
    queue = rest[0] if rest else None
    return Replaced(moved=False, state=state, from_queue=queue, to_queue=queue)


class Router(RouterReads):
    def __init__(
        self,
        redis: Any,
        tenant: str,
        queues: Sequence[QueueConfig],
        settings: RoutingConfig,
        default_queue: str | None = None,
    ) -> None:
        super().__init__(
            redis,
            RouterKeys(tenant, [q.name for q in queues]),
            PresenceKeys(tenant),
            settings.recent_messages,
        )
        self.queues = {q.name: q for q in queues}
        self.settings = settings
        self.default_queue = default_queue or next(iter(self.queues))
        self._scripts = Scripts(redis, "router", CONTRACTS, self.keys, self.agent_keys)
        self._every_queue = {
            "queue_keys": self.keys.queue_keys,
            "queue_names": self.keys.queue_names,
        }

    async def sync_queues(self) -> None:
        configs = {name: json.dumps(queue_rules(q)) for name, q in self.queues.items()}
        await self.redis.hset(self.keys.queue_config, mapping=configs)

    def _queues(self, names: Sequence[str] | None = None) -> dict[str, list[str]]:
        """A script call's queue groups: the keys of every queue (or of those named) and, in
        the same order, their names."""
        if names is None:
            return self._every_queue
        return {"queue_keys": [self.keys.queue(n) for n in names], "queue_names": list(names)}

    # Inbound.

    async def ingest(
        self,
        channel: str,
        account: str,
        external_id: str,
        customer: Customer,
        message: Message,
        now_ms: int,
        placement: Placement,
        thread: str | None = None,
        reopen_within_s: float = 0.0,
    ) -> Ingested:
        k = self.keys
        field = customer_field(channel, account, customer.id, thread)
        base_field = customer_field(channel, account, customer.id)
        queue = self.queues[placement.queue]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(k.customer_open, field)
            pipe.hget(k.last_agent, base_field)
            pipe.hget(k.last_closed, field)
            raw_open, raw_last, raw_closed = await pipe.execute()
        expected = text(raw_open)
        closed, _, closed_at = text(raw_closed).partition("|")
        reopen = closed if closed and now_ms - int(closed_at) <= _ms(reopen_within_s) else ""
        route = self._new_route(placement, channel, field, now_ms, text(raw_last))
        if base_field != field:
            route.last_agent_field = base_field  # the last agent is the customer's, across threads
        encoded = _encode(message)
        timers = waiting_timers(queue, placement.waits_from_ms or now_ms)
        for _ in range(8):
            new_conversation = new_id("c", now_ms)
            conv = expected or reopen or new_conversation
            meta = ConversationMeta(
                id=conv,
                channel=channel,
                account=account,
                customer=customer,
                queue=queue.name,
                priority=placement.priority,
                created_at=message.sent_at,
            )
            reply = await self._scripts.run(
                "ingest",
                dedupe=k.dedupe(channel, account, external_id),
                messages=k.messages(conv),
                queue=k.queue(queue.name),
                field=field,
                expected=expected,
                new_conversation=new_conversation,
                message=encoded,
                message_id=message.id,
                new_meta=_encode(meta),
                new_route=encode_route(route),
                score=queue_score(placement.priority, now_ms),
                dedupe_ttl_ms=_ms(self.settings.dedupe_ttl_s),
                now_ms=now_ms,
                reopen="" if expected else reopen,
                timer_item_count=len(timers),
                timer_items=timers,
                **self._queues(),
            )
            outcome = text(reply[0])
            if outcome == "retry":
                expected, reopen = text(reply[1]), ""
                continue
            if outcome == "duplicate":
                conv, message_id = text(reply[1]), text(reply[2])
                stored = await self.find_message(conv, message_id)
                return Ingested(conversation_id=conv, message=stored or message, duplicate=True)
            _, conv, created, state, agent, node, position, conversation_queue = reply
            return Ingested(
                conversation_id=text(conv),
                message=message,
                duplicate=False,
                created=int(created) > 0,
                reopened=int(created) == 2,
                state=text(state),
                agent=text(agent) or None,
                agent_node=text(node) or None,
                queue=text(conversation_queue),
                queue_position=None if position < 0 else int(position) + 1,
            )
        raise RoutingError("busy", "the customer's conversation kept changing; try again")

    def _new_route(
        self, placement: Placement, channel: str, field: str, now_ms: int, last_agent: str
    ) -> Route:
        """The route of a conversation, should the message open one. A returning customer's
        last agent is preferred for the queue's sticky wait (熟客优先)."""
        route = Route(
            queue=placement.queue,
            channel=channel,
            priority=placement.priority,
            enqueued_ms=now_ms,
            customer_field=field,
            skills=placement.skills,
            grade=placement.grade,
            sla_s=placement.sla_s,
            waits_from_ms=placement.waits_from_ms,
            basis=placement.basis,
        )
        agent, _, since = last_agent.partition("|")
        window = _ms(self.settings.returning_customer_window_s)
        sticky = _ms(self.queues[placement.queue].sticky_wait_s)
        if agent and since and now_ms - int(since) <= window and sticky > 0:
            route.preferred_agent, route.preferred_until_ms = agent, now_ms + sticky
            route.preferred_must_qualify = 1
        return route

    # Routing decisions.

    async def dispatch(
        self, now_ms: int, open_queues: Sequence[str] | None = None
    ) -> list[OfferMade]:
        """Offer (or, with auto-accept, assign) waiting conversations of the open queues."""
        s = self.settings
        queues = self._queues(open_queues)
        if not queues["queue_names"]:
            return []
        flat = await self._scripts.run(
            "dispatch",
            now_ms=now_ms,
            offer_timeout_ms=_ms(s.offer_timeout_s),
            batch=s.dispatch_batch,
            scan_limit=s.scan_limit,
            decline_cooldown_ms=_ms(s.decline_cooldown_s),
            **queues,
        )
        return [
            OfferMade(
                offer_id=text(flat[i]) or None,
                conversation_id=text(flat[i + 1]),
                agent=text(flat[i + 2]),
                node=text(flat[i + 3]) or None,
                queue=text(flat[i + 4]),
                enqueued_ms=int(float(flat[i + 5])),
                assigned=text(flat[i + 6]) == "assign",
            )
            for i in range(0, len(flat), 7)
        ]

    async def _release(self, mode: str, now_ms: int, target: str | int, agent: str) -> list[Any]:
        return await self._scripts.run(
            "release",
            mode=mode,
            now_ms=now_ms,
            target=target,
            agent=agent,
            unused="",
            missed_before_away=self.settings.missed_offers_before_away,
            **self._queues(),
        )

    @staticmethod
    def _released(flat: list[Any]) -> list[Released]:
        return [
            Released(
                offer_id=text(flat[i]),
                conversation_id=text(flat[i + 1]),
                agent=text(flat[i + 2]),
                queue=text(flat[i + 3]),
                agent_set_away=bool(int(flat[i + 4])),
                offer_due_ms=int(flat[i + 5]),
            )
            for i in range(0, len(flat), 6)
        ]

    async def decline(self, offer_id: str, agent: str, now_ms: int) -> Released:
        flat = await self._release("decline", now_ms, offer_id, agent)
        if flat and text(flat[0]) == "!not_yours":
            raise RoutingError("not_yours", f"offer {offer_id} was made to another agent")
        if not flat:
            raise RoutingError("unknown_offer", f"no pending offer {offer_id}")
        return self._released(flat)[0]

    async def expire_offers(self, now_ms: int, limit: int = 100) -> list[Released]:
        return self._released(await self._release("expire", now_ms, limit, ""))

    async def accept(self, offer_id: str, agent: str, now_ms: int) -> Accepted:
        reply = await self._scripts.run("accept", offer_id=offer_id, agent=agent, now_ms=now_ms)
        refuse(
            reply,
            gone=("unknown_offer", f"offer {offer_id} is no longer pending"),
            not_yours=("not_yours", f"offer {offer_id} was made to another agent"),
        )
        return self.accepted(text(reply[1]), decode_route(reply[2]), int(reply[3]))

    def accepted(self, conversation_id: str, route: Route, offer_due_ms: int = 0) -> Accepted:
        queue = self.queues.get(route.queue)
        sla = route.sla_s if route.sla_s is not None else queue.sla_s if queue else None
        return Accepted(
            conversation_id=conversation_id,
            queue=route.queue,
            channel=route.channel,
            enqueued_ms=route.enqueued_ms,
            sla_s=sla,
            leave_message=bool(route.leave_message),
            offer_due_ms=offer_due_ms,
        )

    async def close(
        self, conversation_id: str, agent: str | None, now_ms: int | None = None
    ) -> ClosedOutcome:
        reply = await self._scripts.run(
            "close",
            conversation=conversation_id,
            agent=agent or "",
            now_ms=now_ms or int(time.time() * 1000),
            **self._queues(),
        )
        refuse(reply, **_conversation_refusals(conversation_id))
        return ClosedOutcome(
            previous_state=text(reply[1]),
            agent=text(reply[2]) or None,
            offered_to=text(reply[3]) or None,
            offer_id=text(reply[4]) or None,
        )

    async def transfer(
        self,
        conversation_id: str,
        by_agent: str | None,
        now_ms: int,
        to_queue: str | None = None,
        to_agent: str | None = None,
        note: str | None = None,
    ) -> str | None:
        """Move a conversation to a queue, or to an agent who is offered it first for the
        offer timeout. Returns the agent who held it."""
        reply = await self._scripts.run(
            "transfer",
            conversation=conversation_id,
            by_agent=by_agent or "",
            to_queue=to_queue or "",
            to_agent=to_agent or "",
            now_ms=now_ms,
            offer_timeout_ms=_ms(self.settings.offer_timeout_s),
            note=note or "",
            **self._queues(),
        )
        refuse(
            reply,
            **_conversation_refusals(conversation_id),
            busy=("busy", "an offer for this conversation is pending; try again"),
            unknown_queue=("unknown_queue", f"no queue named {to_queue!r}"),
        )
        return text(reply[1]) or None

    async def replace(self, conversation_id: str, placement: Placement, now_ms: int) -> Replaced:
        """Place a conversation afresh (its content changed: an edited review) while it waits
        in a queue: the placement's queue, priority, skills, grade and SLA, its original
        enqueue time. Offered, assigned or closed, it is left as it is."""
        reply = await self._scripts.run(
            "replace",
            conversation=conversation_id,
            queue=placement.queue,
            priority=placement.priority,
            skills="" if placement.skills is None else json.dumps(placement.skills),
            grade=placement.grade or "",
            sla_s="" if placement.sla_s is None else placement.sla_s,
            basis=placement.basis or "",
            now_ms=now_ms,
            **self._queues(),
        )
        refuse(reply, unknown_queue=("unknown_queue", f"no queue named {placement.queue!r}"))
        return _replaced([text(item) for item in reply])

    async def add_reply(
        self, conversation_id: str, agent: str, client_msg_id: str, message: Message, now_ms: int
    ) -> ReplyStored:
        k = self.keys
        reply = await self._scripts.run(
            "reply",
            reply_once=k.reply_once(agent, client_msg_id),
            messages=k.messages(conversation_id),
            conversation=conversation_id,
            agent=agent,
            message_id=message.id,
            message=_encode(message),
            marker_ttl_ms=_ms(self.settings.dedupe_ttl_s),
            now_ms=now_ms,
        )
        refuse(
            reply, not_yours=("not_yours", f"conversation {conversation_id} is not assigned to you")
        )
        outcome = text(reply[0])
        return ReplyStored(
            message_id=text(reply[1]),
            duplicate=outcome == "duplicate",
            first_reply=outcome == "ok" and bool(reply[2]),
        )

    async def add_system_message(self, conversation_id: str, message: Message) -> None:
        """A message the gateway itself sent the customer (auto-replies), kept in the history."""
        await self.redis.rpush(self.keys.messages(conversation_id), _encode(message))

    async def forget_reply(
        self, conversation_id: str, agent: str, client_msg_id: str, message: Message
    ) -> None:
        """Undo add_reply for a reply the channel refused, so that the agent's retry with the
        same client_msg_id is sent rather than acknowledged as a duplicate."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.reply_once(agent, client_msg_id))
            pipe.lrem(self.keys.messages(conversation_id), -1, _encode(message))
            await pipe.execute()

    async def expire_agents(self, now_ms: int, grace_ms: int) -> list[AgentExpiry]:
        """Agents gone past their grace period go offline; their offers are taken back and
        their unanswered conversations requeued."""
        flat = await self._scripts.run(
            "expire_agents",
            now_ms=now_ms,
            grace_ms=grace_ms,
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
                k.closed, "-inf", now_ms - _ms(retention_s), start=0, num=limit
            )
        ]
        if not old:
            return 0
        return int(
            await self._scripts.run(
                "purge", message_lists=[k.messages(c) for c in old], conversations=old
            )
        )

    async def record_accept(self, queue: str, now_ms: int, keep: int = 20) -> None:
        """Remember recent accept times per queue, for the estimated wait told to customers."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.accepts(queue), now_ms)
            pipe.ltrim(self.keys.accepts(queue), 0, keep - 1)
            await pipe.execute()

    async def recent_accepts(self, queue: str) -> list[int]:
        """Accept times in ms, newest first."""
        return [int(t) for t in await self.redis.lrange(self.keys.accepts(queue), 0, -1)]
