"""The records kept beside a conversation's routing state, in the agent protocol's shapes:
internal notes (``Note``) and the summary of a closed conversation that its customer's next
agents see (``PastConversation``). The router stores them as opaque msgpack; encoding and
decoding them is here, in one place, for the agent actions, the dispatcher and the close."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import msgspec

from adapters.model import Conversation
from gateway.agents.protocol import Note, NoteAuthor, PastConversation
from gateway.config import CLOSE_REASON_LABELS
from router.engine import Router
from router.ids import new_id

log = logging.getLogger(__name__)

_encode = msgspec.msgpack.Encoder().encode
_decode_note = msgspec.msgpack.Decoder(Note).decode
_decode_past = msgspec.msgpack.Decoder(PastConversation).decode

# Notes in a transfer's name when a supervisor (the admin API) transfers.
SUPERVISOR = NoteAuthor(id="supervisor", name="Supervisor")


def new_note(author: NoteAuthor, text: str, now_ms: int) -> Note:
    return Note(id=new_id("n", now_ms), author=author, text=text, at_ms=now_ms)


def encode_record(record: Note | PastConversation) -> bytes:
    return _encode(record)


async def notes_of(router: Router, ids: Sequence[str]) -> dict[str, list[Note]]:
    """The notes of those of ids that have any, oldest first; one round trip."""
    found = await router.notes(ids)
    return {conv: [_decode_note(raw) for raw in notes] for conv, notes in found.items()}


def past_conversation(
    conversation: Conversation,
    closed_ms: int,
    agent: str | None,
    agent_name: str | None,
    close_reason: str | None,
    messages: int,
) -> PastConversation:
    last = next((m.text for m in reversed(conversation.messages) if m.text.strip()), None)
    return PastConversation(
        id=conversation.id,
        channel=conversation.channel,
        queue=conversation.queue,
        opened_ms=int(conversation.created_at.timestamp() * 1000),
        closed_ms=closed_ms,
        agent=agent,
        agent_name=agent_name,
        close_reason=close_reason,
        messages=messages,
        last_text=last,
    )


async def history_of(
    router: Router, conversation: Conversation, since_ms: int, limit: int
) -> list[PastConversation]:
    """The customer's earlier conversations, newest first, closed since ``since_ms``, the
    conversation itself left out."""
    found = []
    raw = await router.history(conversation.channel, conversation.account, conversation.customer.id)
    for item in raw:
        try:
            past = _decode_past(item)
        except msgspec.DecodeError:
            log.warning("an unreadable history record of %s skipped", conversation.id)
            continue
        if past.id != conversation.id and past.closed_ms >= since_ms:
            found.append(past)
    return found[:limit]


def close_reason_label(reason: str | None, configured: Sequence[str]) -> str:
    """The metric's label for a close reason: bounded to the configured reasons and
    ``none``/``other``, whatever agents send."""
    none, other = CLOSE_REASON_LABELS
    if reason is None:
        return none
    return reason if reason in configured else other
