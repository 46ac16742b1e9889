"""What is kept of a conversation beside its routing state, for the agents who serve it or
its customer later: internal notes (removed with the conversation's other data when it is
purged) and each customer's earlier conversations, kept as short summaries past the
conversation's own retention, for ``history_days``.

The router stores both as opaque msgpack records: their shape is the agent protocol's
(gateway/agents/protocol.py), which the router may not import."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from router.core import RouterCore, conversation_refusals, refuse
from router.keys import customer_field
from router.reads import text

# Notes a conversation keeps; past this the oldest go (a long conversation is not a wiki).
NOTES_KEPT = 200


class ConversationRecords(RouterCore):
    async def add_note(
        self,
        conversation_id: str,
        agent: str | None,
        record: bytes,
        text_of_note: str = "",
        now_ms: int | None = None,
    ) -> str | None:
        """Add a note to an open conversation that ``agent`` holds (None: a supervisor);
        returns the agent holding it. ``text_of_note`` goes in the note_added event."""
        reply = await self._scripts.run(
            "note",
            notes=self.keys.notes(conversation_id),
            conversation=conversation_id,
            agent=agent or "",
            note=record,
            keep=NOTES_KEPT,
            note_json=json.dumps({"text": text_of_note}, ensure_ascii=False),
            now_ms=now_ms or int(time.time() * 1000),
        )
        refuse(reply, **conversation_refusals(conversation_id))
        return text(reply[1]) or None

    async def notes(self, ids: Sequence[str]) -> dict[str, list[bytes]]:
        """The notes of those of ids that have any, oldest first."""
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in ids:
                pipe.lrange(self.keys.notes(conv), 0, -1)
            raw = await pipe.execute()
        return {conv: list(found) for conv, found in zip(ids, raw, strict=True) if found}

    async def message_count(self, conversation_id: str) -> int:
        return int(await self.redis.llen(self.keys.messages(conversation_id)))

    async def add_history(
        self, channel: str, account: str, customer_id: str, record: bytes, keep: int, ttl_s: float
    ) -> None:
        """Remember a closed conversation for its customer: newest first, ``keep`` of them,
        all forgotten ``ttl_s`` after the latest close."""
        key = self.keys.history(customer_field(channel, account, customer_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, record)
            pipe.ltrim(key, 0, keep - 1)
            pipe.pexpire(key, max(1, int(ttl_s * 1000)))
            await pipe.execute()

    async def history(self, channel: str, account: str, customer_id: str) -> list[bytes]:
        """The customer's closed conversations, newest first."""
        key = self.keys.history(customer_field(channel, account, customer_id))
        return list(await self.redis.lrange(key, 0, -1))

    async def holds_or_offered(self, conversation_id: str, agent: str) -> bool:
        """Whether the agent holds the conversation or has a pending offer of it."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(k.agent_of, conversation_id)
            pipe.hget(k.offer_of, conversation_id)
            holder, offer = await pipe.execute()
        if text(holder) == agent:
            return True
        if offer is None:
            return False
        raw = await self.redis.hget(k.offers, offer)
        return raw is not None and json.loads(raw)["a"] == agent
