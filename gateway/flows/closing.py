"""Closing a conversation, whoever asks: its agent, a supervisor, its channel, or a timer.
Lua closes it in any state; this flow tells everyone who must know, in an order that
matters: the customer's last auto-reply goes out while the conversation is still open,
the agent offered or holding it hears of it, and a dispatch follows because the close may
have freed that agent. The closed conversation is then kept, as a summary, in its
customer's history for the agents who serve them next, and what follows the close (the
customer asked to rate it, a pick for QA) is decided (aftercare.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from adapters.model import Conversation
from gateway.agents.protocol import Closed
from gateway.config import AgentConfig, ConversationsConfig
from gateway.flows.aftercare import Aftercare
from gateway.flows.clock import Clock
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.flows.records import close_reason_label, encode_record, past_conversation
from gateway.observability.instrument import observe_close
from gateway.observability.metrics import Metrics
from gateway.supervisors.tap import ChangeTap
from router.engine import Router

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Closing:
    router: Router
    metrics: Metrics
    to_customers: ToCustomers
    to_agents: ToAgents
    dispatcher: Dispatcher
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)
    agents: Mapping[str, AgentConfig]
    settings: ConversationsConfig
    aftercare: Aftercare | None = None

    async def close(
        self,
        conversation_id: str,
        by_agent: str | None,
        reason: str,
        message: str | None = None,
        close_reason: str | None = None,
    ) -> None:
        """Close in any state, tell whoever held or was offered it, and the customer.
        ``close_reason``: what the agent gave as the reason (checked by the caller)."""
        conversation = await self.router.conversation(conversation_id)
        if conversation is not None and message:
            await self.to_customers.auto_reply(conversation, message)
        now = self.clock()
        outcome = await self.router.close(conversation_id, by_agent, now, reason, close_reason)
        label = close_reason_label(close_reason, self.settings.close_reasons)
        await observe_close(self, conversation_id, conversation, outcome.agent, reason, label)
        log.info(
            "conversation %s closed: %s, reason %s",
            conversation_id,
            reason,
            close_reason or "none given",
            extra={"conversation": conversation_id},
        )
        if conversation is not None:
            await self._remember(conversation, now, outcome.agent, close_reason)
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
        if conversation is not None and self.aftercare is not None:
            await self.aftercare.after_close(conversation, outcome.agent, now)

    async def _remember(
        self, conversation: Conversation, now: int, holder: str | None, close_reason: str | None
    ) -> None:
        """Keep the closed conversation in its customer's history; best effort, since the
        close itself is done."""
        settings = self.settings
        if settings.history_days <= 0:
            return
        agent = self.agents.get(holder or "")
        try:
            count = await self.router.message_count(conversation.id)
            record = past_conversation(
                conversation, now, holder, agent.display_name if agent else None,
                close_reason, count,
            )  # fmt: skip
            await self.router.add_history(
                conversation.channel,
                conversation.account,
                conversation.customer.id,
                encode_record(record),
                settings.history_limit,
                settings.history_days * 86400,
            )
        except Exception:
            log.exception("could not keep %s in its customer's history", conversation.id)
