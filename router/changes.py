"""What agents and channels do to a conversation once it exists: close it, transfer it, place
it afresh when its content changed (replace), and keep its history (an agent's reply, stored
once per client message id; the gateway's own messages). Each change of routing state is one
Lua call that refuses what the caller may not do (not their conversation, a pending offer)."""

from __future__ import annotations

import json
import time

import msgspec

from adapters.model import Message, Reclassified
from router.config import GradeConfig
from router.core import RouterCore, conversation_refusals, encode, ms, refuse
from router.deadlines import deadline_timers, route_deadlines
from router.events import add_event, event_json
from router.reads import text
from router.results import ClosedOutcome, Placement, ReplyStored


class ConversationChanges(RouterCore):
    async def close(
        self,
        conversation_id: str,
        agent: str | None,
        now_ms: int | None = None,
        reason: str = "",
        close_reason: str | None = None,
    ) -> ClosedOutcome:
        """Close in any state. ``reason``: why (agent, supervisor, idle...), and
        ``close_reason`` the agent's own, both carried by the conversation_closed event."""
        reply = await self._scripts.run(
            "close",
            conversation=conversation_id,
            agent=agent or "",
            now_ms=now_ms or int(time.time() * 1000),
            reason=reason or ("agent" if agent else "system"),
            close_reason=close_reason or "",
            **self._queues(),
        )
        refuse(reply, **conversation_refusals(conversation_id))
        return ClosedOutcome(
            previous_state=text(reply[1]),
            agent=text(reply[2]) or None,
            offered_to=text(reply[3]) or None,
            offer_id=text(reply[4]) or None,
        )

    async def transfer(
        self,
        conversation_id: str,
        by_agent: str | None,
        now_ms: int,
        to_queue: str | None = None,
        to_agent: str | None = None,
        note: str | None = None,
        note_record: bytes = b"",
    ) -> str | None:
        """Move a conversation to a queue, or to an agent who is offered it first for the
        offer timeout. Returns the agent who held it. ``note_record``: the note as it joins
        the conversation's notes (encoded by the caller), b"" for none."""
        reply = await self._scripts.run(
            "transfer",
            conversation=conversation_id,
            by_agent=by_agent or "",
            to_queue=to_queue or "",
            to_agent=to_agent or "",
            now_ms=now_ms,
            offer_timeout_ms=ms(self.settings.offer_timeout_s),
            note=note or "",
            notes=self.keys.notes(conversation_id),
            note_record=note_record,
            **self._queues(),
        )
        refuse(
            reply,
            **conversation_refusals(conversation_id),
            busy=("busy", "an offer for this conversation is pending; try again"),
            unknown_queue=("unknown_queue", f"no queue named {to_queue!r}"),
        )
        return text(reply[1]) or None

    async def replace(
        self, conversation_id: str, placement: Placement, now_ms: int
    ) -> Reclassified:
        """Place a conversation afresh (its content changed: an edited review) while it waits
        in a queue: the placement's queue, priority, skills, grade and SLA, its original
        enqueue time. Offered, assigned or closed, it is left as it is."""
        reply = await self._scripts.run(
            "replace",
            conversation=conversation_id,
            queue=placement.queue,
            priority=placement.priority,
            skills="" if placement.skills is None else json.dumps(placement.skills),
            grade=placement.grade or "",
            sla_s="" if placement.sla_s is None else placement.sla_s,
            basis=placement.basis or "",
            now_ms=now_ms,
            **self._queues(),
        )
        refuse(reply, unknown_queue=("unknown_queue", f"no queue named {placement.queue!r}"))
        return _reclassified([text(item) for item in reply])

    async def start_deadlines(
        self, conversation_id: str, grade: GradeConfig | None, now_ms: int
    ) -> bool:
        """Give a conversation an edit made a graded complaint (replace moved it) the grade's
        deadlines, from now; whether it got them (not when it had some, or has closed)."""
        deadlines = route_deadlines(grade, now_ms)
        if deadlines is None:
            return False
        reply = await self._scripts.run(
            "deadlines",
            conversation=conversation_id,
            deadlines=msgspec.json.encode(deadlines),
            timer_items=deadline_timers(deadlines),
        )
        return bool(reply)

    async def add_reply(
        self, conversation_id: str, agent: str, client_msg_id: str, message: Message, now_ms: int
    ) -> ReplyStored:
        k = self.keys
        reply = await self._scripts.run(
            "reply",
            reply_once=k.reply_once(agent, client_msg_id),
            messages=k.messages(conversation_id),
            conversation=conversation_id,
            agent=agent,
            message_id=message.id,
            message=encode(message),
            marker_ttl_ms=ms(self.settings.dedupe_ttl_s),
            now_ms=now_ms,
            message_json=event_json(message),
        )
        refuse(
            reply, not_yours=("not_yours", f"conversation {conversation_id} is not assigned to you")
        )
        outcome = text(reply[0])
        return ReplyStored(
            message_id=text(reply[1]),
            duplicate=outcome == "duplicate",
            first_reply=outcome == "ok" and bool(reply[2]),
        )

    async def add_system_message(self, conversation_id: str, message: Message) -> None:
        """A message the gateway itself sent the customer (auto-replies), kept in the history,
        with its message_out event in the same MULTI."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.keys.messages(conversation_id), encode(message))
            data = {"agent": None, "first_reply": False, "message": msgspec.to_builtins(message)}
            now_ms = int(time.time() * 1000)
            add_event(
                pipe, self.keys.events, self.events, self.keys.tenant, "message_out",
                conversation_id, now_ms, data,
            )  # fmt: skip
            await pipe.execute()

    async def forget_reply(
        self, conversation_id: str, agent: str, client_msg_id: str, message: Message
    ) -> None:
        """Undo add_reply for a reply the channel refused, so that the agent's retry with the
        same client_msg_id is sent rather than acknowledged as a duplicate. Its message_out
        event stays in the stream (events are never taken back): a message_out_failed event,
        in the same MULTI, says it was not sent."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.reply_once(agent, client_msg_id))
            pipe.lrem(self.keys.messages(conversation_id), -1, encode(message))
            data = {"agent": agent, "message_id": message.id}
            add_event(
                pipe, self.keys.events, self.events, self.keys.tenant, "message_out_failed",
                conversation_id, int(time.time() * 1000), data,
            )  # fmt: skip
            await pipe.execute()


def _reclassified(reply: list[str]) -> Reclassified:
    """The replace script's answer as a result."""
    outcome, rest = reply[0], reply[1:]
    if outcome == "moved":
        return Reclassified(moved=True, state="queued", from_queue=rest[0], to_queue=rest[1])
    state = "queued" if outcome == "unchanged" else outcome
    queue = rest[0] if rest else None
    return Reclassified(moved=False, state=state, from_queue=queue, to_queue=queue)
