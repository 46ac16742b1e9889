"""The flows between customers, the router and agents: ingest a message, make and deliver
routing decisions, and act on timers. Every routing decision itself is one Lua call
(router/); what agents do is in gateway/agents/actions.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.contract import Adapter, DeliveryError, IngestResult
from adapters.model import Conversation, ConversationEvent, Inbound, Message, Outbound
from gateway.agents.protocol import (
    Assigned,
    Closed,
    MessageFrame,
    Notice,
    Offer,
    OfferRevoked,
    StatusFrame,
)
from gateway.agents.sessions import AgentSessions
from gateway.config import AgentConfig, Config
from gateway.observability.instrument import mark_accepted, observe_close
from gateway.observability.metrics import Metrics
from gateway.tasks import stop_if_cancelled
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id
from router.models import ConversationMeta
from router.placement import Placed, Placer, message_facts
from router.results import AgentExpiry, OfferMade, Released, Replaced, TimerEvent

log = logging.getLogger(__name__)

Clock = Callable[[], int]
SYSTEM_AUTHOR = "system"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def at_ms(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, UTC)


class Switchboard:
    def __init__(
        self,
        config: Config,
        router: Router,
        presence: Presence,
        sessions: AgentSessions,
        metrics: Metrics,
        adapters: Mapping[str, Adapter],
        clock: Clock = wall_clock_ms,
    ) -> None:
        self.config = config
        self.router = router
        self.presence = presence
        self.sessions = sessions
        self.metrics = metrics
        self.adapters = adapters
        self.clock = clock
        core = config.core
        self.placer = Placer(
            core.queues, core.rules, core.grades, core.hours, core.routing.default_queue
        )
        self.agents: dict[str, AgentConfig] = {a.id: a for a in config.agents}
        self._dispatch_wanted = asyncio.Event()

    # Customers.

    async def ingest(self, inbound: Inbound) -> IngestResult:
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
            if result.state == "assigned" and result.agent:
                frame = MessageFrame(conversation_id=result.conversation_id, message=message)
                await self.sessions.deliver(result.agent, result.agent_node, frame)
            elif result.state == "queued":
                self.request_dispatch()
            if result.created:
                await self._greet(
                    result.conversation_id,
                    result.queue,
                    result.queue_position,
                    placed.closed_notice,
                )
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
            self.request_dispatch()
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
            await self.auto_reply(conversation, closed)
        elif position:
            await self.auto_reply(conversation, spec.position_message.format(position=position))

    def adapter_for(self, channel: str) -> Adapter | None:
        """The adapter whose messages are on this channel."""
        adapter = self.adapters.get(channel)
        if adapter is not None:
            return adapter
        return next((a for a in self.adapters.values() if a.channel == channel), None)

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        conversation = await self.router.conversation(conversation_id)
        if conversation is None or conversation.agent is None:
            return
        node = await self.presence.node_of(conversation.agent)
        frame = Notice(conversation_id=conversation_id, code=code, detail=detail)
        await self.sessions.deliver(conversation.agent, node, frame)

    async def notify(self, conversation: Conversation, **event: Any) -> None:
        adapter = self.adapter_for(conversation.channel)
        if adapter is None:
            return
        notice = ConversationEvent(
            channel=conversation.channel,
            account=conversation.account,
            conversation_id=conversation.id,
            customer=conversation.customer,
            **event,
        )
        try:
            await adapter.notify(notice)
        except Exception:
            self.metrics.adapter_errors.labels(adapter.name, "notify").inc()
            log.exception("adapter %s failed to notify %s", adapter.name, notice.kind)

    async def send_to_customer(
        self,
        conversation: Conversation | ConversationMeta,
        message: Message,
        author_name: str | None,
        client_msg_id: str | None = None,
        subject: str | None = None,
    ) -> None:
        """Hand a stored outbound message to the conversation's channel; DeliveryError when
        the channel refuses. client_msg_id (the agent's) lets a channel send a re-sent reply
        at most once, since a refused reply is stored again under a new message id."""
        adapter = self.adapter_for(conversation.channel)
        if adapter is None:
            raise DeliveryError("channel_unavailable", f"channel {conversation.channel} is off")
        outbound = Outbound(
            channel=conversation.channel,
            account=conversation.account,
            conversation_id=conversation.id,
            customer=conversation.customer,
            message_id=message.id,
            text=message.text,
            attachments=message.attachments,
            agent_name=author_name,
            metadata={
                key: value
                for key, value in (("client_msg_id", client_msg_id), ("subject", subject))
                if value
            },
        )
        try:
            await adapter.send(outbound)
        except DeliveryError:
            self.metrics.outbound.labels(conversation.channel, "failed").inc()
            raise
        except Exception as exc:
            self.metrics.outbound.labels(conversation.channel, "failed").inc()
            self.metrics.adapter_errors.labels(adapter.name, "send").inc()
            log.exception("adapter %s failed to send", conversation.channel)
            raise DeliveryError("channel_error", f"the channel failed: {exc}") from exc
        self.metrics.outbound.labels(conversation.channel, "sent").inc()

    async def auto_reply(self, conversation: Conversation, text: str) -> None:
        """A message from the gateway itself; kept in the history, best effort."""
        message = Message(
            id=new_id("m", self.clock()),
            direction="out",
            text=text,
            sent_at=at_ms(self.clock()),
            author=SYSTEM_AUTHOR,
        )
        await self.router.add_system_message(conversation.id, message)
        try:
            await self.send_to_customer(conversation, message, None)
        except DeliveryError as exc:
            log.warning(
                "auto-reply in %s not sent: %s",
                conversation.id,
                exc,
                extra={"conversation": conversation.id},
            )

    # Routing.

    def request_dispatch(self) -> None:
        """Ask the dispatcher task to run; requests made while it runs coalesce into one."""
        self._dispatch_wanted.set()

    async def run_dispatcher(self) -> None:
        while True:
            await self._dispatch_wanted.wait()
            self._dispatch_wanted.clear()
            try:
                await self.dispatch()
            except Exception:
                log.exception("dispatch failed; the next request retries")
            stop_if_cancelled()

    async def dispatch(self) -> list[OfferMade]:
        made: list[OfferMade] = []
        while True:
            now = self.clock()
            started = time.perf_counter()
            decisions = await self.router.dispatch(now, self.placer.open_queues(now))
            self.metrics.dispatch_seconds.observe(time.perf_counter() - started)
            if not decisions:
                return made
            self.metrics.routed.inc(len(decisions))
            made.extend(decisions)
            await self._deliver_decisions(decisions)
            if len(decisions) < self.config.routing.dispatch_batch:
                return made

    async def _deliver_decisions(self, decisions: list[OfferMade]) -> None:
        conversations = {
            c.id: c for c in await self.router.conversations([d.conversation_id for d in decisions])
        }
        timeout = self.config.routing.offer_timeout_s
        for decision in decisions:
            conversation = conversations.get(decision.conversation_id)
            if conversation is None:
                continue
            if decision.assigned:
                await self.sessions.deliver(
                    decision.agent, decision.node, Assigned(conversation=conversation)
                )
                await self.on_assigned(
                    conversation, decision.agent, decision.queue, decision.enqueued_ms
                )
            else:
                frame = Offer(
                    offer_id=decision.offer_id or "",
                    conversation=conversation,
                    expires_in_s=timeout,
                )
                await self.sessions.deliver(decision.agent, decision.node, frame)

    async def on_assigned(
        self, conversation: Conversation, agent_id: str, queue: str, enqueued_ms: int
    ) -> None:
        """Bookkeeping once a conversation is an agent's: wait and SLA metrics, the
        estimated-wait history, and telling the customer."""
        now = self.clock()
        waited_s = max(0.0, (now - enqueued_ms) / 1000)
        self.metrics.wait.labels(queue).observe(waited_s)
        spec = self.placer.queues.get(queue)
        sla_s = conversation.sla_s if conversation.sla_s is not None else spec and spec.sla_s
        if sla_s and not conversation.leave_message:
            met = waited_s <= sla_s
            self.metrics.sla.labels(queue, "met" if met else "breached").inc()
        await self.router.record_accept(queue, now)
        await mark_accepted(self.router, conversation.id, now)
        agent = self.agents.get(agent_id)
        await self.notify(
            conversation, kind="agent_joined", agent_name=agent.display_name if agent else agent_id
        )

    def offer_decided(self, queue: str, outcome: str, due_ms: int, now_ms: int) -> None:
        """Count an offer's outcome and observe its decision time: from the offer to the
        agent's answer. The offer was made the offer timeout before its due time (``due_ms``,
        0 when unknown); an offer that timed out counts the offer timeout itself."""
        self.metrics.offers.labels(queue, outcome).inc()
        timeout_s = self.config.routing.offer_timeout_s
        if outcome == "timed_out":
            seconds = timeout_s
        elif due_ms > 0:
            seconds = max(0.0, (now_ms - (due_ms - timeout_s * 1000)) / 1000)
        else:
            return
        self.metrics.offer_decision.labels(queue, outcome).observe(seconds)

    async def revoke(self, agent: str, offer_id: str, reason: str) -> None:
        node = await self.presence.node_of(agent)
        await self.sessions.deliver(agent, node, OfferRevoked(offer_id=offer_id, reason=reason))

    async def expire_offers(self) -> list[Released]:
        released = await self.router.expire_offers(self.clock())
        for item in released:
            self.offer_decided(item.queue, "timed_out", item.offer_due_ms, 0)
            await self.revoke(item.agent, item.offer_id, "timeout")
            if item.agent_set_away:
                log.warning(
                    "agent %s set away after missing offers",
                    item.agent,
                    extra={"agent": item.agent},
                )
                node = await self.presence.node_of(item.agent)
                frame = StatusFrame(status="away", reason="missed_offers")
                await self.sessions.deliver(item.agent, node, frame)
        if released:
            self.request_dispatch()
        return released

    async def expire_agents(self) -> list[AgentExpiry]:
        grace_ms = int(self.config.presence.grace_s * 1000)
        events = await self.router.expire_agents(self.clock(), grace_ms)
        for event in events:
            log.info(
                "agent %s after the grace period: %s %s",
                event.agent,
                event.what,
                event.conversation_id or "",
                extra={"agent": event.agent},
            )
            if event.what == "revoked" and event.offer_id:
                route = await self.router.route(event.conversation_id or "")
                self.metrics.offers.labels(route.queue if route else "", "revoked").inc()
        if any(e.what in ("requeued", "revoked") for e in events):
            self.request_dispatch()
        return events

    # Timers.

    async def fire_timers(self) -> list[TimerEvent]:
        now = self.clock()
        events = await self.router.fire_timers(now, self.placer.open_queues(now))
        for event in events:
            try:
                await self._on_timer(event)
            except Exception:
                log.exception(
                    "timer %s of %s failed",
                    event.kind,
                    event.conversation_id,
                    extra={"conversation": event.conversation_id},
                )
        if any(e.kind in ("escalated", "aged") for e in events):
            self.request_dispatch()
        return events

    async def _on_timer(self, event: TimerEvent) -> None:
        conversation = await self.router.conversation(event.conversation_id)
        if conversation is None:
            return
        spec = self.placer.queues.get(conversation.queue)
        if event.kind in ("escalated", "aged"):
            self.metrics.timer_fired(conversation.queue, event.kind, event.detail, spec)
            return
        if spec is None:
            return
        if event.kind == "max_wait":
            self.metrics.escalations.labels(conversation.queue, f"max_wait_{event.detail}").inc()
            if event.detail == "close":
                await self.close_conversation(
                    conversation.id, None, "max_wait", spec.max_wait_message
                )
            else:
                await self.auto_reply(conversation, spec.max_wait_message)
        elif event.kind == "idle_warn":
            await self.auto_reply(conversation, spec.inactivity_warning)
        elif event.kind == "idle_close":
            await self.close_conversation(
                conversation.id, None, "inactive", spec.inactivity_close_message
            )

    async def close_conversation(
        self, conversation_id: str, by_agent: str | None, reason: str, message: str | None = None
    ) -> None:
        """Close in any state, tell whoever held or was offered it, and the customer."""
        conversation = await self.router.conversation(conversation_id)
        if conversation is not None and message:
            await self.auto_reply(conversation, message)
        outcome = await self.router.close(conversation_id, by_agent, self.clock())
        await observe_close(self, conversation_id, conversation, outcome.agent, reason)
        if outcome.offered_to and outcome.offer_id:
            await self.revoke(outcome.offered_to, outcome.offer_id, reason)
            self.metrics.offers.labels(conversation.queue if conversation else "", "revoked").inc()
        if outcome.agent:
            node = await self.presence.node_of(outcome.agent)
            frame = Closed(conversation_id=conversation_id, reason=reason)
            await self.sessions.deliver(outcome.agent, node, frame)
        if conversation is not None:
            await self.notify(conversation, kind="closed", reason=reason)
        self.request_dispatch()
