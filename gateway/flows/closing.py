"""Closing a conversation, whoever asks: its agent, a supervisor, its channel, or a timer.
Lua closes it in any state; this flow tells everyone who must know, in an order that
matters: the customer's last auto-reply goes out while the conversation is still open,
the agent offered or holding it hears of it, and a dispatch follows because the close may
have freed that agent."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.agents.protocol import Closed
from gateway.flows.clock import Clock
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.observability.instrument import observe_close
from gateway.observability.metrics import Metrics
from gateway.supervisors.tap import ChangeTap
from router.engine import Router


@dataclass(kw_only=True)
class Closing:
    router: Router
    metrics: Metrics
    to_customers: ToCustomers
    to_agents: ToAgents
    dispatcher: Dispatcher
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)

    async def close(
        self, conversation_id: str, by_agent: str | None, reason: str, message: str | None = None
    ) -> None:
        """Close in any state, tell whoever held or was offered it, and the customer."""
        conversation = await self.router.conversation(conversation_id)
        if conversation is not None and message:
            await self.to_customers.auto_reply(conversation, message)
        outcome = await self.router.close(conversation_id, by_agent, self.clock())
        await observe_close(self, conversation_id, conversation, outcome.agent, reason)
        if outcome.offered_to and outcome.offer_id:
            await self.to_agents.revoke(outcome.offered_to, outcome.offer_id, reason)
            self.metrics.offers.labels(conversation.queue if conversation else "", "revoked").inc()
        if outcome.agent:
            frame = Closed(conversation_id=conversation_id, reason=reason)
            await self.to_agents.send(outcome.agent, frame)
        self.tap.closed(conversation_id, reason)
        if conversation is not None:
            await self.to_customers.notify(conversation, kind="closed", reason=reason)
        self.dispatcher.request()
