"""What the channel remembers about each review and each reply, in Redis.

Per feed:

- ``reviews``: a hash, review id -> the last version seen (its hash, rating, version
  number, conversation). This, not the router's time-limited dedupe, is what makes a
  re-poll, a restarted gateway or a feed that starts over repeat nothing: it is kept as long
  as the feed is configured.
- ``convs``: a hash, conversation id -> review id, for replies.
- ``lock:{review}``: held while one review is taken, so that a webhook push and a poll (or
  two processes) never give two versions of a review the same number.
- ``reply:{message id}``: a reply being posted or posted (SET NX), so a retried send never
  posts an answer twice.
- ``sig:{digest}``: webhook signatures seen within the timestamp tolerance (replays).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from adapters.contract import AdapterHost
from adapters.reviews.cursor import ADAPTER

REPLY_PENDING_TTL_S = 300
REPLY_DONE_TTL_S = 30 * 86400
LOCK_TTL_S = 30.0
LOCK_WAIT_S = 10.0


class ReviewState(msgspec.Struct, kw_only=True, omit_defaults=True):
    hash: str
    version: int = 0  # 0: recorded but never made a conversation (too old, baseline)
    rating: float | None = None
    digests: tuple[str, str] = ("", "")  # of title and text, to say what an edit changed
    customer: str = ""
    conversation: str = ""
    product: str = ""  # for reply templates' {product}
    deleted: bool = False


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ReviewState)


class ReviewStore:
    def __init__(self, host: AdapterHost, feed: str) -> None:
        self.host, self.feed = host, feed
        self.reviews_key = host.key(ADAPTER, feed, "reviews")
        self.convs_key = host.key(ADAPTER, feed, "convs")

    @property
    def redis(self) -> Any:
        return self.host.redis

    async def get(self, review_id: str) -> ReviewState | None:
        raw = await self.redis.hget(self.reviews_key, review_id)
        return _decode(raw)

    async def get_many(self, review_ids: list[str]) -> list[ReviewState | None]:
        if not review_ids:
            return []
        return [_decode(raw) for raw in await self.redis.hmget(self.reviews_key, review_ids)]

    async def put(self, review_id: str, state: ReviewState) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.reviews_key, review_id, _encoder.encode(state))
            if state.conversation:
                pipe.hset(self.convs_key, state.conversation, review_id)
            await pipe.execute()

    async def ids(self) -> list[str]:
        return [k.decode() for k in await self.redis.hkeys(self.reviews_key)]

    async def review_of(self, conversation_id: str) -> str | None:
        raw = await self.redis.hget(self.convs_key, conversation_id)
        return raw.decode() if raw else None

    def lock(self, review_id: str) -> Any:
        key = self.host.key(ADAPTER, self.feed, "lock", _digest(review_id))
        return self.redis.lock(key, timeout=LOCK_TTL_S, blocking_timeout=LOCK_WAIT_S)

    # Replies.

    def _reply_key(self, message_id: str) -> str:
        return self.host.key(ADAPTER, self.feed, "reply", message_id)

    async def claim_reply(self, message_id: str) -> str | None:
        """Claim the right to post this message; None when claimed, else what holds it:
        "pending" (being posted, or a post that died) or "sent"."""
        key = self._reply_key(message_id)
        if await self.redis.set(key, b"pending", nx=True, ex=REPLY_PENDING_TTL_S):
            return None
        held = await self.redis.get(key)
        return held.decode() if held else "pending"

    async def reply_sent(self, message_id: str) -> None:
        await self.redis.set(self._reply_key(message_id), b"sent", ex=REPLY_DONE_TTL_S)

    async def reply_failed(self, message_id: str) -> None:
        await self.redis.delete(self._reply_key(message_id))

    # Webhook replays.

    async def first_use(self, signature: str, ttl_s: float) -> bool:
        """True the first time a signature is seen within ttl_s."""
        key = self.host.key(ADAPTER, self.feed, "sig", _digest(signature))
        return bool(await self.redis.set(key, b"1", nx=True, px=max(1, int(ttl_s * 1000))))

    async def forget_use(self, signature: str) -> None:
        """A push we could not store may be retried with the same signature."""
        await self.redis.delete(self.host.key(ADAPTER, self.feed, "sig", _digest(signature)))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _decode(raw: bytes | None) -> ReviewState | None:
    if raw is None:
        return None
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None  # a damaged record: the review is taken again, as new
