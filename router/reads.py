"""Reading routing state: conversations as agents see them, agents' conversations and offers,
queue statistics. Nothing here changes state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import msgspec

from adapters.model import Conversation, Message
from presence.keys import PresenceKeys
from router.keys import RouterKeys, customer_field
from router.models import ConversationMeta, conversation_of
from router.results import QueueStats
from router.route import Route, decode_route

decode_message = msgspec.msgpack.Decoder(Message).decode
decode_meta = msgspec.msgpack.Decoder(ConversationMeta).decode
META_CACHE_SIZE = 10_000


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class RouterReads:
    def __init__(self, redis: Any, keys: RouterKeys, agent_keys: PresenceKeys, recent: int) -> None:
        self.redis = redis
        self.keys = keys
        self.agent_keys = agent_keys
        self.recent_messages = recent
        self._meta_cache: dict[str, ConversationMeta] = {}

    async def conversations(self, ids: Sequence[str]) -> list[Conversation]:
        """The conversations that exist among ids, with their recent messages."""
        if not ids:
            return []
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for conv in ids:
                pipe.hget(k.meta, conv)
                pipe.hget(k.state, conv)
                pipe.hget(k.agent_of, conv)
                pipe.hget(k.route, conv)
                pipe.lrange(k.messages(conv), -self.recent_messages, -1)
            raw = await pipe.execute()
        found = []
        for i in range(0, len(raw), 5):
            meta, state, agent, route, messages = raw[i : i + 5]
            if meta is None:
                continue
            found.append(
                conversation_of(
                    decode_meta(meta),
                    text(state) or "closed",  # type: ignore[arg-type]
                    text(agent) or None,
                    [decode_message(m) for m in messages],
                    decode_route(route) if route else None,
                )
            )
        return found

    async def messages_before_recent(self, conversation_id: str) -> list[Message]:
        """The conversation's messages older than the recent ones ``conversations`` gives,
        oldest first (for a client that may have missed some of them)."""
        raw = await self.redis.lrange(
            self.keys.messages(conversation_id), 0, -(self.recent_messages + 1)
        )
        return [decode_message(m) for m in raw]

    async def meta(self, conversation_id: str) -> ConversationMeta | None:
        """What is fixed when a conversation opens (channel, account, customer). It never
        changes, so it is cached in the process: a reply needs no read of the history."""
        cached = self._meta_cache.get(conversation_id)
        if cached is not None:
            return cached
        raw = await self.redis.hget(self.keys.meta, conversation_id)
        if raw is None:
            return None
        if len(self._meta_cache) >= META_CACHE_SIZE:
            self._meta_cache.pop(next(iter(self._meta_cache)))
        meta = self._meta_cache[conversation_id] = decode_meta(raw)
        return meta

    async def conversation(self, conversation_id: str) -> Conversation | None:
        found = await self.conversations([conversation_id])
        return found[0] if found else None

    async def route(self, conversation_id: str) -> Route | None:
        raw = await self.redis.hget(self.keys.route, conversation_id)
        return decode_route(raw) if raw else None

    async def routes(self, ids: Sequence[str]) -> dict[str, Route]:
        """The routes of those of ids that have one."""
        if not ids:
            return {}
        values = await self.redis.hmget(self.keys.route, ids)
        return {c: decode_route(v) for c, v in zip(ids, values, strict=True) if v}

    async def find_message(self, conversation_id: str, message_id: str) -> Message | None:
        for raw in reversed(await self.redis.lrange(self.keys.messages(conversation_id), 0, -1)):
            message = decode_message(raw)
            if message.id == message_id:
                return message
        return None

    async def open_conversation_id(
        self, channel: str, account: str, customer_id: str, thread: str | None = None
    ) -> str | None:
        field = customer_field(channel, account, customer_id, thread)
        return text(await self.redis.hget(self.keys.customer_open, field)) or None

    async def agent_conversation_ids(self, agent: str) -> list[str]:
        members = await self.redis.zrangebylex(
            self.keys.assignments, b"[" + agent.encode() + b"\0", b"(" + agent.encode() + b"\1"
        )
        return [text(m).split("\0", 1)[1] for m in members]

    async def pending_offers(self, agent: str | None = None) -> list[tuple[str, str, str, int]]:
        """(offer id, conversation, agent, due ms) of pending offers, for one agent or all."""
        raw = await self.redis.hgetall(self.keys.offers)
        offers = []
        for offer_id, value in raw.items():
            o = json.loads(value)
            if agent is None or o["a"] == agent:
                offers.append((text(offer_id), o["c"], o["a"], int(o["d"])))
        return offers

    async def waiting(self, queue: str) -> list[str]:
        """The queue's conversations in routing order."""
        return [text(c) for c in await self.redis.zrange(self.keys.queue(queue), 0, -1)]

    async def queue_stats(self) -> dict[str, QueueStats]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys.queue_keys:
                pipe.zrange(key, 0, -1)
            raw = await pipe.execute()
        waiting = [text(c) for members in raw for c in members]
        routes = await self.routes(waiting)
        stats = {}
        for name, members in zip(self.keys.queue_names, raw, strict=True):
            times = [routes[text(c)].enqueued_ms for c in members if text(c) in routes]
            stats[name] = QueueStats(
                depth=len(members), oldest_enqueued_ms=min(times, default=None)
            )
        return stats
