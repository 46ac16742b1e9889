"""What agents (and, through the admin API, supervisors) do to conversations: accept,
decline, reply, close, transfer, and set a status."""

from __future__ import annotations

import logging

from adapters.contract import DeliveryError
from adapters.model import Attachment, Conversation, Message
from gateway.agents.protocol import Assigned, Closed, ReplyAck, StatusFrame
from gateway.agents.sessions import AgentSession
from gateway.config import AgentConfig
from gateway.flows.clock import at_ms
from gateway.flows.switchboard import Switchboard
from presence.registry import BUILT_IN_STATUSES
from router.ids import new_id
from router.results import RoutingError

log = logging.getLogger(__name__)


class AgentActions:
    def __init__(self, board: Switchboard) -> None:
        self.board = board
        self.router = board.router
        self.metrics = board.metrics

    def statuses(self) -> list[str]:
        return [*BUILT_IN_STATUSES, *self.board.config.routing.not_ready_reasons]

    async def welcome_state(
        self, agent: str
    ) -> tuple[list[Conversation], list[tuple[str, Conversation, float]]]:
        """The agent's open conversations, and the offers still waiting for them as
        (offer id, conversation, seconds left)."""
        conversations = await self.router.conversations(
            await self.router.agent_conversation_ids(agent)
        )
        pending = await self.router.pending_offers(agent)
        offered = {c.id: c for c in await self.router.conversations([p[1] for p in pending])}
        now = self.board.clock()
        offers = [
            (offer_id, offered[conv], max(0.0, (due - now) / 1000))
            for offer_id, conv, _, due in pending
            if conv in offered
        ]
        return conversations, offers

    async def set_status(self, agent_id: str, status: str, reason: str = "") -> None:
        if status not in self.statuses():
            raise RoutingError("bad_status", f"unknown status {status!r}; one of {self.statuses()}")
        if await self.board.presence.set_status(agent_id, status, reason):
            self.board.request_dispatch()
        self.board.tap.changed()
        node = await self.board.presence.node_of(agent_id)
        await self.board.sessions.deliver(
            agent_id, node, StatusFrame(status=status, reason=reason or None)
        )

    async def accept(self, session: AgentSession, offer_id: str) -> None:
        now = self.board.clock()
        accepted = await self.router.accept(offer_id, session.agent.id, now)
        self.board.offer_decided(accepted.queue, "accepted", accepted.offer_due_ms, now)
        conversation = await self.router.conversation(accepted.conversation_id)
        if conversation is None:
            return
        await session.send(Assigned(conversation=conversation))
        await self.board.on_assigned(
            conversation, session.agent.id, accepted.queue, accepted.enqueued_ms
        )

    async def decline(self, session: AgentSession, offer_id: str, reason: str | None) -> None:
        now = self.board.clock()
        released = await self.router.decline(offer_id, session.agent.id, now)
        self.board.offer_decided(released.queue, "declined", released.offer_due_ms, now)
        log.info(
            "agent %s declined %s: %s",
            session.agent.id,
            released.conversation_id,
            reason or "no reason given",
            extra={"agent": session.agent.id, "conversation": released.conversation_id},
        )
        self.board.request_dispatch()

    async def reply(
        self,
        session: AgentSession,
        conversation_id: str,
        text: str,
        client_msg_id: str,
        attachments: list[Attachment],
        subject: str | None = None,
    ) -> None:
        if not text.strip() and not attachments:
            raise RoutingError("bad_frame", "a reply needs text or an attachment")
        agent = session.agent
        now = self.board.clock()
        message = Message(
            id=new_id("m", now),
            direction="out",
            text=text,
            sent_at=at_ms(now),
            attachments=attachments,
            author=agent.id,
        )
        stored = await self.router.add_reply(conversation_id, agent.id, client_msg_id, message, now)
        if stored.duplicate:
            await session.send(ReplyAck(client_msg_id=client_msg_id, message_id=stored.message_id))
            return
        conversation = await self.router.meta(conversation_id)
        if conversation is None:
            raise RoutingError("unknown_conversation", f"no conversation {conversation_id}")
        try:
            await self.board.send_to_customer(
                conversation, message, agent.display_name, client_msg_id, subject
            )
        except DeliveryError:
            await self.router.forget_reply(conversation_id, agent.id, client_msg_id, message)
            raise
        if stored.first_reply:
            waited = (now - conversation.created_at.timestamp() * 1000) / 1000
            self.metrics.first_response.labels(conversation.channel).observe(max(0.0, waited))
        await session.send(ReplyAck(client_msg_id=client_msg_id, message_id=message.id))

    async def close(self, agent: AgentConfig | None, conversation_id: str) -> None:
        reason = "closed_by_agent" if agent else "closed_by_supervisor"
        await self.board.close_conversation(conversation_id, agent.id if agent else None, reason)

    async def transfer(
        self,
        agent: AgentConfig | None,
        conversation_id: str,
        to_agent: str | None,
        to_queue: str | None,
        note: str | None,
    ) -> None:
        if to_agent is None and to_queue is None:
            raise RoutingError("bad_frame", "name to_agent or to_queue")
        if to_agent is not None:
            await self._check_target(to_agent, agent)
        previous = await self.router.transfer(
            conversation_id,
            agent.id if agent else None,
            self.board.clock(),
            to_queue=to_queue,
            to_agent=to_agent,
            note=note,
        )
        log.info(
            "conversation %s transferred from %s to %s",
            conversation_id,
            previous,
            to_agent or to_queue,
            extra={"conversation": conversation_id},
        )
        if previous:
            node = await self.board.presence.node_of(previous)
            frame = Closed(conversation_id=conversation_id, reason="transferred")
            await self.board.sessions.deliver(previous, node, frame)
        self.board.request_dispatch()

    async def _check_target(self, to_agent: str, by: AgentConfig | None) -> None:
        if to_agent not in self.board.agents:
            raise RoutingError("unknown_agent", f"no agent {to_agent!r}")
        if by is not None and to_agent == by.id:
            raise RoutingError("bad_frame", "cannot transfer to yourself")
        statuses = await self.board.presence.statuses()
        if statuses.get(to_agent) != "available":
            raise RoutingError("agent_unavailable", f"agent {to_agent} is not available")
