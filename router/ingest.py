"""The ingest path: a customer's message is stored once and lands in a conversation (the
customer's open one, one closed moments ago that reopens, or a new one) in one Lua call, so
that two gateway processes taking the same customer's messages never open two conversations.
A new conversation waits in its queue for the next dispatch; a message for one an agent holds
comes back with that agent and their node, for the caller to deliver."""

from __future__ import annotations

import msgspec

from adapters.model import Customer, Message
from router.core import RouterCore, encode, ms
from router.deadlines import deadline_timers, route_deadlines
from router.events import event_json
from router.ids import new_id
from router.keys import customer_field
from router.models import ConversationMeta
from router.queues import queue_score, waiting_timers
from router.reads import text
from router.results import Ingested, Placement, RoutingError
from router.route import Route, encode_route


class CreatedData(msgspec.Struct, kw_only=True):
    """A conversation_created event's data (docs/events.md)."""

    channel: str
    account: str
    customer: Customer
    queue: str
    priority: int
    thread: str | None = None


class Ingestion(RouterCore):
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
        # A guess, to build the keys: the script decides, against the close as it stands.
        window_ms = ms(reopen_within_s)
        reopen = closed if closed and window_ms > 0 and now_ms - int(closed_at) <= window_ms else ""
        route = self._new_route(placement, channel, field, now_ms, text(raw_last))
        if base_field != field:
            route.last_agent_field = base_field  # the last agent is the customer's, across threads
        encoded = encode(message)
        timers = waiting_timers(queue, placement.waits_from_ms or now_ms)
        timers += deadline_timers(route.deadlines)
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
                new_meta=encode(meta),
                new_route=encode_route(route),
                score=queue_score(placement.priority, now_ms),
                dedupe_ttl_ms=ms(self.settings.dedupe_ttl_s),
                now_ms=now_ms,
                reopen="" if expected else reopen,
                reopen_within_ms=window_ms,
                message_json=event_json(message),
                conversation_json=event_json(
                    CreatedData(
                        channel=channel,
                        account=account,
                        customer=customer,
                        queue=queue.name,
                        priority=placement.priority,
                        thread=thread,
                    )
                ),
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
            deadlines=route_deadlines(placement.grade_config, now_ms),
        )
        agent, _, since = last_agent.partition("|")
        window = ms(self.settings.returning_customer_window_s)
        sticky = ms(self.queues[placement.queue].sticky_wait_s)
        if agent and since and now_ms - int(since) <= window and sticky > 0:
            route.preferred_agent, route.preferred_until_ms = agent, now_ms + sticky
            route.preferred_must_qualify = 1
        return route
