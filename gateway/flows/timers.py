"""What time does on its own, run by the housekeeping loop: offers expire, agents gone
past the grace period lose what they held, and conversation timers fire (escalation,
ageing, the longest wait, inactivity, a re-offer to a decliner falling due, a graded
complaint's deadlines: deadlines.py). Lua finds
what is due and changes the state; this module does the follow-ups on the channels and
sessions, and asks for a dispatch when something went back to a queue or may be offered."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.agents.protocol import StatusFrame
from gateway.flows.clock import Clock
from gateway.flows.closing import Closing
from gateway.flows.deadlines import KINDS as DEADLINE_KINDS
from gateway.flows.deadlines import DeadlineAlerts
from gateway.flows.departures import follow_up_departures
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.flows.outcomes import OfferOutcomes
from gateway.observability.metrics import Metrics
from router.engine import Router
from router.placement import Placer
from router.results import AgentExpiry, Released, TimerEvent

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Timers:
    router: Router
    placer: Placer
    metrics: Metrics
    grace_s: float
    to_customers: ToCustomers
    to_agents: ToAgents
    outcomes: OfferOutcomes
    dispatcher: Dispatcher
    closing: Closing
    clock: Clock
    deadlines: DeadlineAlerts

    async def expire_offers(self) -> list[Released]:
        released = await self.router.expire_offers(self.clock())
        for item in released:
            self.outcomes.offer_decided(item.queue, "timed_out", item.offer_due_ms, 0)
            await self.to_agents.revoke(item.agent, item.offer_id, "timeout")
            if item.agent_set_away:
                log.warning(
                    "agent %s set away after missing offers",
                    item.agent,
                    extra={"agent": item.agent},
                )
                frame = StatusFrame(status="away", reason="missed_offers")
                await self.to_agents.send(item.agent, frame)
        if released:
            self.dispatcher.request()
        return released

    async def expire_agents(self) -> list[AgentExpiry]:
        grace_ms = int(self.grace_s * 1000)
        events = await self.router.expire_agents(self.clock(), grace_ms)
        for event in events:
            log.info(
                "agent %s after the grace period: %s %s",
                event.agent,
                event.what,
                event.conversation_id or "",
                extra={"agent": event.agent},
            )
        await follow_up_departures(events, self.router, self.metrics, self.to_customers)
        if any(e.what in ("requeued", "revoked") for e in events):
            self.dispatcher.request()
        return events

    async def fire(self) -> list[TimerEvent]:
        """Fire the conversation timers that are due; one failing follow-up does not stop
        the others."""
        now = self.clock()
        events = await self.router.fire_timers(now, self.placer.open_queues(now))
        for event in events:
            if event.kind == "reoffer":
                continue  # the dispatch below makes the re-offer; nothing to tell anyone
            try:
                await self._follow_up(event)
            except Exception:
                log.exception(
                    "timer %s of %s failed",
                    event.kind,
                    event.conversation_id,
                    extra={"conversation": event.conversation_id},
                )
        if any(e.kind in ("escalated", "aged", "reoffer") for e in events):
            self.dispatcher.request()
        return events

    async def _follow_up(self, event: TimerEvent) -> None:
        conversation = await self.router.conversation(event.conversation_id)
        if conversation is None:
            return
        if event.kind in DEADLINE_KINDS:
            await self.deadlines.follow_up(event, conversation)
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
                await self.closing.close(conversation.id, None, "max_wait", spec.max_wait_message)
            else:
                await self.to_customers.auto_reply(conversation, spec.max_wait_message)
        elif event.kind == "idle_warn":
            await self.to_customers.auto_reply(conversation, spec.inactivity_warning)
        elif event.kind == "idle_close":
            await self.closing.close(
                conversation.id, None, "inactive", spec.inactivity_close_message
            )
