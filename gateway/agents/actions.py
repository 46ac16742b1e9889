"""What agents (and, through the admin API, supervisors) do to conversations: accept,
decline, reply, close (with a close reason), transfer, add internal notes, look up the
customer's earlier conversations, and set a status."""

from __future__ import annotations

import logging

from adapters.contract import DeliveryError
from adapters.model import Attachment, Conversation, Message
from gateway.agents.protocol import (
    Assigned,
    CannedReply,
    Closed,
    History,
    Note,
    NoteAdded,
    NoteAuthor,
    ReplyAck,
    StatusFrame,
)
from gateway.agents.sessions import AgentSession
from gateway.config import MAX_CLOSE_REASON, AgentConfig
from gateway.flows.clock import at_ms
from gateway.flows.departures import follow_up_departures
from gateway.flows.records import SUPERVISOR, encode_record, history_of, new_note, notes_of
from gateway.flows.switchboard import Switchboard
from presence.registry import BUILT_IN_STATUSES
from router.ids import new_id
from router.results import RoutingError

log = logging.getLogger(__name__)

MAX_NOTE = 2000


class AgentActions:
    def __init__(self, board: Switchboard) -> None:
        self.board = board
        self.router = board.router
        self.metrics = board.metrics

    def statuses(self) -> list[str]:
        return [*BUILT_IN_STATUSES, *self.board.config.routing.not_ready_reasons]

    def canned_replies(self) -> list[CannedReply]:
        return [
            CannedReply(id=c.id, title=c.title or c.id, text=c.text, queues=list(c.queues))
            for c in self.board.config.core.canned_replies
        ]

    def close_reasons(self) -> list[str]:
        return list(self.board.config.core.conversations.close_reasons)

    async def notes(self, ids: list[str]) -> dict[str, list[Note]]:
        return await notes_of(self.router, ids)

    async def welcome_state(
        self, agent: str
    ) -> tuple[list[Conversation], list[tuple[str, Conversation, float]]]:
        """The agent's open conversations, and the offers still waiting for them as
        (offer id, conversation, seconds left). Their notes: ``notes()``."""
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
        """``reason``: who set it, when not the agent ("" is the agent's own choice). Set
        offline by someone else (a supervisor), the agent is gone for good, as after the grace
        period: their offers and conversations go to other agents (on_agent_gone)."""
        if status not in self.statuses():
            raise RoutingError("bad_status", f"unknown status {status!r}; one of {self.statuses()}")
        if await self.board.presence.set_status(agent_id, status, reason):
            self.board.request_dispatch()
        if status == "offline" and reason:
            await self._gone(agent_id, reason)
        self.board.tap.changed()
        node = await self.board.presence.node_of(agent_id)
        await self.board.sessions.deliver(
            agent_id, node, StatusFrame(status=status, reason=reason or None)
        )

    async def _gone(self, agent_id: str, reason: str) -> None:
        board = self.board
        events = await self.router.agent_gone(agent_id, board.clock())
        for event in events:
            log.info(
                "agent %s set offline (%s): %s %s",
                agent_id,
                reason,
                event.what,
                event.conversation_id or "",
                extra={"agent": agent_id},
            )
        await follow_up_departures(
            events, self.router, self.metrics, board.to_customers, board.to_agents
        )
        if any(e.what in ("requeued", "revoked") for e in events):
            board.request_dispatch()

    async def accept(self, session: AgentSession, offer_id: str) -> None:
        now = self.board.clock()
        accepted = await self.router.accept(offer_id, session.agent.id, now)
        self.board.offer_decided(accepted.queue, "accepted", accepted.offer_due_ms, now)
        conversation = await self.router.conversation(accepted.conversation_id)
        if conversation is None:
            return
        notes = await self.notes([conversation.id])
        frame = Assigned(conversation=conversation, notes=notes.get(conversation.id, []))
        await session.send(frame)
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
        acks = self.board.acks
        generation = acks.generation()
        stored = await self.router.add_reply(conversation_id, agent.id, client_msg_id, message, now)
        if stored.duplicate:
            await acks.confirm(generation)
            await session.send(ReplyAck(client_msg_id=client_msg_id, message_id=stored.message_id))
            return
        conversation = await self.router.meta(conversation_id)
        if conversation is None:
            raise RoutingError("unknown_conversation", f"no conversation {conversation_id}")
        try:
            await self.board.send_to_customer(
                conversation, message, agent.shown_to_customers, client_msg_id, subject
            )
        except DeliveryError:
            await self.router.forget_reply(conversation_id, agent.id, client_msg_id, message)
            raise
        if stored.first_reply:
            waited = (now - conversation.created_at.timestamp() * 1000) / 1000
            self.metrics.first_response.labels(conversation.channel).observe(max(0.0, waited))
        await acks.confirm(generation)
        await session.send(
            ReplyAck(client_msg_id=client_msg_id, message_id=message.id, sent_at=message.sent_at)
        )

    async def close(
        self, agent: AgentConfig | None, conversation_id: str, close_reason: str | None = None
    ) -> None:
        self.check_close_reason(close_reason)
        reason = "closed_by_agent" if agent else "closed_by_supervisor"
        await self.board.close_conversation(
            conversation_id, agent.id if agent else None, reason, close_reason=close_reason
        )

    def check_close_reason(self, close_reason: str | None) -> None:
        if close_reason is None:
            return  # a close without a reason stays possible: clients before close reasons
        reasons = self.close_reasons()
        if reasons and close_reason not in reasons:
            raise RoutingError(
                "bad_close_reason", f"unknown close reason {close_reason!r}; one of {reasons}"
            )
        if not close_reason.strip() or len(close_reason) > MAX_CLOSE_REASON:
            raise RoutingError(
                "bad_close_reason", f"a close reason is 1 to {MAX_CLOSE_REASON} characters"
            )

    async def note(self, agent: AgentConfig | None, conversation_id: str, text: str) -> Note:
        """Add an internal note; it goes to the agent holding the conversation (who may be
        the one who wrote it), never to the customer."""
        text = text.strip()
        if not text or len(text) > MAX_NOTE:
            raise RoutingError("bad_frame", f"a note is 1 to {MAX_NOTE} characters")
        author = NoteAuthor(id=agent.id, name=agent.display_name) if agent else SUPERVISOR
        note = new_note(author, text, self.board.clock())
        record = encode_record(note)
        holder = await self.router.add_note(
            conversation_id, agent.id if agent else None, record, text, self.board.clock()
        )
        if holder:
            frame = NoteAdded(conversation_id=conversation_id, note=note)
            await self.board.to_agents.send(holder, frame)
        return note

    async def history(self, session: AgentSession, conversation_id: str) -> None:
        """The customer's earlier conversations, to the agent holding or offered this one."""
        agent = session.agent.id
        if not await self.router.holds_or_offered(conversation_id, agent):
            raise RoutingError("not_yours", f"conversation {conversation_id} is not yours")
        conversation = await self.router.conversation(conversation_id)
        if conversation is None:
            raise RoutingError("unknown_conversation", f"no conversation {conversation_id}")
        settings = self.board.config.core.conversations
        since = self.board.clock() - int(settings.history_days * 86400 * 1000)
        found = await history_of(self.router, conversation, since, settings.history_limit)
        await session.send(History(conversation_id=conversation_id, conversations=found))

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
        now = self.board.clock()
        record = b""
        if note and note.strip():
            author = NoteAuthor(id=agent.id, name=agent.display_name) if agent else SUPERVISOR
            record = encode_record(new_note(author, note.strip()[:MAX_NOTE], now))
        previous = await self.router.transfer(
            conversation_id,
            agent.id if agent else None,
            now,
            to_queue=to_queue,
            to_agent=to_agent,
            note=note,
            note_record=record,
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
