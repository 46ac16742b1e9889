"""What the flows send out: messages and events to customers through their channel's
adapter, and frames to agents through their sessions. Each direction has one place, so a
channel's failure is counted and logged the same way wherever a flow sends, and whatever
must see what reaches an agent has one function to go to (``ToAgents.deliver_message``).
Nothing here decides anything: the flows that import this module do."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.contract import Adapter, DeliveryError
from adapters.model import Conversation, ConversationEvent, Message, Outbound
from adapters.retryable import redis_unavailable
from gateway.agents.protocol import Frame, MessageFrame, Notice, OfferRevoked
from gateway.agents.sessions import AgentSessions
from gateway.flows.clock import Clock, at_ms
from gateway.observability.metrics import Metrics
from gateway.supervisors.tap import ChangeTap
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id
from router.models import ConversationMeta

log = logging.getLogger(__name__)

SYSTEM_AUTHOR = "system"


@dataclass
class ToCustomers:
    """Customers are reached through the adapter of their conversation's channel."""

    router: Router
    metrics: Metrics
    adapters: Mapping[str, Adapter]
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)

    def adapter_for(self, channel: str) -> Adapter | None:
        """The adapter whose messages are on this channel."""
        adapter = self.adapters.get(channel)
        if adapter is not None:
            return adapter
        return next((a for a in self.adapters.values() if a.channel == channel), None)

    async def notify(self, conversation: Conversation, **event: Any) -> None:
        """Tell the channel what happened to the conversation (an agent joined, its place in
        the queue, it closed); best effort, a failing adapter is counted and logged."""
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
        except Exception as exc:
            self.metrics.adapter_errors.labels(adapter.name, "notify").inc()
            if redis_unavailable(exc):  # said once by the background loops; not a bug here
                log.warning("adapter %s could not notify %s: %s", adapter.name, notice.kind, exc)
                return
            log.exception("adapter %s failed to notify %s", adapter.name, notice.kind)

    async def send(
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
        self.tap.message(conversation.id, message)

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
            await self.send(conversation, message, None)
        except DeliveryError as exc:
            log.warning(
                "auto-reply in %s not sent: %s",
                conversation.id,
                exc,
                extra={"conversation": conversation.id},
            )


@dataclass
class ToAgents:
    """Agents are reached through their sessions, on whichever node holds their socket."""

    router: Router
    presence: Presence
    sessions: AgentSessions

    async def send(self, agent: str, frame: Frame) -> None:
        """A frame to an agent, on whichever node their socket is now."""
        node = await self.presence.node_of(agent)
        await self.sessions.deliver(agent, node, frame)

    async def send_on(self, agent: str, node: str | None, frame: Frame) -> None:
        """A frame to an agent on the node a routing decision found them on."""
        await self.sessions.deliver(agent, node, frame)

    async def deliver_message(
        self, conversation_id: str, agent: str, node: str | None, message: Message
    ) -> None:
        """A customer's message to the agent holding its conversation: the one path a
        message takes to an agent."""
        frame = MessageFrame(conversation_id=conversation_id, message=message)
        await self.send_on(agent, node, frame)

    async def tell(self, conversation_id: str, code: str, detail: str) -> None:
        """A notice about the conversation (from its channel) to the agent holding it."""
        conversation = await self.router.conversation(conversation_id)
        if conversation is None or conversation.agent is None:
            return
        notice = Notice(conversation_id=conversation_id, code=code, detail=detail)
        await self.send(conversation.agent, notice)

    async def revoke(self, agent: str, offer_id: str, reason: str) -> None:
        await self.send(agent, OfferRevoked(offer_id=offer_id, reason=reason))
