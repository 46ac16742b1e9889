"""What follows an offer's outcome. An offer ends accepted or declined by its agent
(gateway/agents/actions.py) or timed out (timers.py); each counts the outcome here. Every
way a conversation becomes an agent's (an accepted offer, a direct assignment by the
dispatcher) ends in ``on_assigned``, so the wait and SLA metrics mean the same whichever
way it came."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.model import Conversation
from gateway.config import AgentConfig
from gateway.flows.clock import Clock
from gateway.flows.outbound import ToCustomers
from gateway.observability.instrument import mark_accepted
from gateway.observability.metrics import Metrics
from gateway.supervisors.tap import ChangeTap
from router.config import RoutingConfig
from router.engine import Router
from router.placement import Placer


@dataclass(kw_only=True)
class OfferOutcomes:
    router: Router
    placer: Placer
    metrics: Metrics
    routing: RoutingConfig
    agents: Mapping[str, AgentConfig]
    to_customers: ToCustomers
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)

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
        sla_met = None
        if sla_s and not conversation.leave_message:
            met = waited_s <= sla_s
            self.metrics.sla.labels(queue, "met" if met else "breached").inc()
            sla_met = (conversation.id, met)
        await self.router.record_accept(
            queue, now, sla_met=sla_met, waited_s=round(waited_s, 3), sla_s=sla_s or None
        )
        self.tap.changed()
        await mark_accepted(self.router, conversation.id, now)
        agent = self.agents.get(agent_id)
        await self.to_customers.notify(
            conversation,
            kind="agent_joined",
            agent_name=agent.shown_to_customers if agent else None,
        )

    def offer_decided(self, queue: str, outcome: str, due_ms: int, now_ms: int) -> None:
        """Count an offer's outcome and observe its decision time: from the offer to the
        agent's answer. The offer was made the offer timeout before its due time (``due_ms``,
        0 when unknown); an offer that timed out counts the offer timeout itself."""
        self.metrics.offers.labels(queue, outcome).inc()
        timeout_s = self.routing.offer_timeout_s
        if outcome == "timed_out":
            seconds = timeout_s
        elif due_ms > 0:
            seconds = max(0.0, (now_ms - (due_ms - timeout_s * 1000)) / 1000)
        else:
            return
        self.metrics.offer_decision.labels(queue, outcome).observe(seconds)
