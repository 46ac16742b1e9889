"""Customer messages in. An adapter hands over an ``Inbound``; its route (queue, priority,
skills) is computed here, before the one Lua call that stores the message and opens or
continues the conversation, so that call decides with everything it needs. What follows
depends on what Lua found: the holding agent gets the message, a queued conversation asks
for a dispatch, and a new one is greeted. Before all that, a digit answering the CSAT
question after a close is taken as the rating (aftercare.py) and opens nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from adapters.contract import IngestResult
from adapters.model import Inbound, Message
from gateway.flows.aftercare import Aftercare
from gateway.flows.clock import Clock
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.observability.metrics import Metrics
from gateway.redis.acks import ReplicaAcks
from gateway.supervisors.tap import ChangeTap
from router.engine import Router
from router.ids import new_id
from router.placement import Placed, Placer, message_facts
from router.results import Replaced

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Ingester:
    router: Router
    placer: Placer
    metrics: Metrics
    to_customers: ToCustomers
    to_agents: ToAgents
    dispatcher: Dispatcher
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)
    acks: ReplicaAcks | None = None
    aftercare: Aftercare | None = None

    async def ingest(self, inbound: Inbound) -> IngestResult:
        if self.aftercare is not None:
            # A lone digit answering the CSAT question is a rating, not a message.
            rating = await self.aftercare.digit_answer(inbound)
            if rating is not None:
                return rating
        now = self.clock()
        message = Message(
            id=new_id("m", now),
            direction="in",
            text=inbound.text,
            sent_at=inbound.received_at,
            attachments=inbound.attachments,
            kind=inbound.kind,
            metadata=inbound.metadata,
        )
        placed = self._place(inbound, now)
        generation = self.acks.generation() if self.acks else 0
        try:
            result = await self.router.ingest(
                inbound.channel,
                inbound.account,
                inbound.external_id,
                inbound.customer,
                message,
                now,
                placed.placement,
                thread=inbound.thread,
                reopen_within_s=inbound.reopen_within_s,
            )
        except Exception:
            self.metrics.inbound.labels(inbound.channel, "rejected").inc()
            raise
        outcome = "duplicate" if result.duplicate else "accepted"
        self.metrics.inbound.labels(inbound.channel, outcome).inc()
        if not result.duplicate:
            self.tap.message(result.conversation_id, message)
            self.tap.changed()
            if result.state == "assigned" and result.agent:
                await self.to_agents.deliver_message(
                    result.conversation_id, result.agent, result.agent_node, message
                )
            elif result.state == "queued":
                self.dispatcher.request()
            if result.created:
                await self._greet(
                    result.conversation_id,
                    result.queue,
                    result.queue_position,
                    placed.closed_notice,
                )
        if self.acks:
            # After the agent has it: a retry is a duplicate, and duplicates are not
            # delivered again. Before the channel's acknowledgement, which follows our return.
            await self.acks.confirm(generation)
        return IngestResult(
            conversation_id=result.conversation_id,
            message=result.message,
            duplicate=result.duplicate,
            queue_position=result.queue_position,
        )

    def _place(self, inbound: Inbound, now_ms: int) -> Placed:
        facts = message_facts(inbound.channel, inbound.account, inbound.text, inbound.metadata)
        return self.placer.place(facts, now_ms)

    async def reclassify(self, conversation_id: str, inbound: Inbound) -> Replaced:
        """Place a waiting conversation afresh by what it now says (an edited review), as a
        new conversation opened by ``inbound`` would be placed, and route it at once when it
        moved: a free agent of its new queue gets it without waiting for the next sweep. A
        closed-queue notice is not sent: the customer was greeted when it opened."""
        now = self.clock()
        placed = self._place(inbound, now)
        replaced = await self.router.replace(conversation_id, placed.placement, now)
        if replaced.moved:
            log.info(
                "conversation %s placed afresh: %s -> %s",
                conversation_id,
                replaced.from_queue,
                replaced.to_queue,
                extra={"conversation": conversation_id},
            )
            # Deadlines start when the conversation becomes a graded complaint; another
            # step than the move's, so a process dying in between leaves it without them.
            await self.router.start_deadlines(conversation_id, placed.placement.grade_config, now)
            self.dispatcher.request()
        return replaced

    async def _greet(
        self, conversation_id: str, queue: str | None, position: int | None, closed: str | None
    ) -> None:
        """A new conversation's first auto-replies: closed now, or the place in the queue
        on channels that cannot show it live."""
        spec = self.placer.queues.get(queue or "")
        if closed is None and not (spec and spec.position_auto_reply and position):
            return
        conversation = await self.router.conversation(conversation_id)
        if conversation is None:
            return
        if closed is not None:
            await self.to_customers.auto_reply(conversation, closed)
        elif position:
            await self.to_customers.auto_reply(
                conversation, spec.position_message.format(position=position)
            )
