"""What a webhook keeps in Redis, beside the tenant's event stream it reads: its consumer
group (what was read, by which process, what is acknowledged), the events read but not yet
acknowledged per conversation (so that a conversation's events go out in order whichever
process holds them), when each first failed, and the parked events (its dead letters) and
those asked to be replayed. Every key carries the ``{tenant}`` hash tag."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.exceptions import ResponseError, WatchError

from presence.lua import LuaContract, Scripts
from router.events import Event, decode_entry
from router.keys import RouterKeys

READ = LuaContract(
    "read",
    keys=("events", "unacked"),
    args=("group", "consumer", "count"),
    more_args=("types",),
)
TOUCH = LuaContract(
    "touch",
    keys=("events", "unacked"),
    args=("group", "consumer"),
    more_args=("items",),
)
CONTRACTS = (READ, TOUCH)


class WebhookKeys:
    def __init__(self, tenant: str, name: str) -> None:
        self.events = RouterKeys(tenant, []).events
        p = f"zt:{{{tenant}}}:webhook:{name}:"
        self.group = f"webhook:{name}"
        self.unacked = p + "unacked"  # zset (all scores 0) "conv\0sortable id", lex ranges
        self.first_failure = p + "first_failure"  # hash id (or "replay:id") -> ms
        self.parked = p + "parked"  # hash id -> JSON Parked
        self.parked_order = p + "parked_order"  # zset id -> ms parked
        self.replay = p + "replay"  # list of JSON Parked asked to be sent again
        self.replay_lease = p + "replay_lease"  # the process sending the head of replay


def sortable(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):010d}"


class Parked(msgspec.Struct, kw_only=True):
    """A dead letter: the event as it would have been sent, and why it was not."""

    event: Event
    parked_at: int  # ms
    attempts: int
    last_error: str


_decode_parked = msgspec.json.Decoder(Parked).decode


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class WebhookStore:
    def __init__(self, redis: Any, tenant: str, name: str, consumer: str) -> None:
        self.redis, self.name, self.consumer = redis, name, consumer
        self.keys = WebhookKeys(tenant, name)
        self._scripts = Scripts(redis, "gateway.events", CONTRACTS, self.keys)

    async def ensure_group(self) -> None:
        """The webhook's group starts at the stream's end when first made: a new webhook
        gets the events from then on, not the whole kept history."""
        try:
            await self.redis.xgroup_create(self.keys.events, self.keys.group, "$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, count: int, types: list[str]) -> list[Event]:
        k = self.keys
        raw = await self._scripts.run(
            "read", group=k.group, consumer=self.consumer, count=count, types=types
        )
        return [decode_entry(entry_id, _pairs(fields)) for entry_id, fields in raw]

    async def claim_idle(self, min_idle_ms: int, count: int) -> list[Event]:
        """Events another process read and has not touched for min_idle_ms (it died, or
        hangs): they become this process's. Ones trimmed from the stream meanwhile are
        forgotten."""
        k = self.keys
        reply = await self.redis.xautoclaim(
            k.events, k.group, self.consumer, min_idle_ms, "0-0", count=count
        )
        entries, deleted = reply[1], reply[2] if len(reply) > 2 else []
        for entry_id in deleted:
            await self._forget(_text(entry_id))
        return [decode_entry(entry_id, fields) for entry_id, fields in entries if fields]

    async def touch(self, events: list[Event]) -> list[str]:
        """For each event: 'go', 'wait' or 'lost' (touch.lua), in one call."""
        if not events:
            return []
        items = [part for e in events for part in (e.id, e.conversation_id)]
        reply = await self._scripts.run(
            "touch", group=self.keys.group, consumer=self.consumer, items=items
        )
        return [_text(outcome) for outcome in reply]

    async def acknowledge(self, events: list[Event]) -> None:
        """Acknowledge delivered events, in one MULTI."""
        if not events:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for event in events:
                self._done(pipe, event)
            await pipe.execute()

    async def first_failure(self, slot: str, now_ms: int) -> int:
        """When delivery of ``slot`` (an id, or "replay:id") first failed, noted now if never."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self.keys.first_failure, slot, now_ms)
            pipe.hget(self.keys.first_failure, slot)
            _, first = await pipe.execute()
        return int(first)

    async def park(self, event: Event, parked: Parked, from_replay: bool = False) -> None:
        """Give up on an event: acknowledge it (or drop it from the replays) and keep it as a
        dead letter, in one MULTI, so that it is either pending or parked, never neither."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            if from_replay:
                pipe.lpop(k.replay)
                pipe.delete(k.replay_lease)
                pipe.hdel(k.first_failure, f"replay:{event.id}")
            else:
                self._done(pipe, event)
            pipe.hset(k.parked, event.id, msgspec.json.encode(parked))
            pipe.zadd(k.parked_order, {event.id: parked.parked_at})
            await pipe.execute()

    def _done(self, pipe: Any, event: Event) -> None:
        k = self.keys
        pipe.xack(k.events, k.group, event.id)
        pipe.zrem(k.unacked, f"{event.conversation_id}\0{sortable(event.id)}")
        # Whichever process saw it fail: the note of its first failure goes with it.
        pipe.hdel(k.first_failure, event.id)

    async def _forget(self, entry_id: str) -> None:
        """An event trimmed from the stream while pending: its conversation is not known any
        more, so its unacknowledged entry is found by its id (rare; the set holds only what
        is in flight)."""
        k = self.keys
        pattern = f"*\0{sortable(entry_id)}"
        members = [member async for member, _ in self.redis.zscan_iter(k.unacked, match=pattern)]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(k.events, k.group, entry_id)
            if members:
                pipe.zrem(k.unacked, *members)
            pipe.hdel(k.first_failure, entry_id)
            await pipe.execute()

    # Dead letters and replays (the admin API's side).

    async def parked(self, limit: int, after: tuple[int, str] | None = None) -> list[Parked]:
        """Parked events, oldest parked first; ``after``: where the previous page ended (its
        last one's parked_at and id), so that a page starts right, also once that event was
        replayed (and is no longer in the set to find a rank by). Ties in parked_at are in
        id order, as the sorted set keeps them."""
        k = self.keys
        if after is None:
            ids = await self.redis.zrange(k.parked_order, 0, limit - 1)
        else:
            since_ms, last_id = after
            ids, offset = [], 0
            while len(ids) < limit:
                chunk = await self.redis.zrangebyscore(
                    k.parked_order, since_ms, "+inf", start=offset, num=limit, withscores=True
                )
                offset += len(chunk)
                later = [m for m, ms in chunk if ms > since_ms or _text(m) > last_id]
                ids += later[: limit - len(ids)]
                if len(chunk) < limit:  # the set's end: asking again would answer nothing
                    break
        if not ids:
            return []
        raw = await self.redis.hmget(k.parked, ids)
        return [_decode_parked(item) for item in raw if item is not None]

    async def parked_at(self, event_id: str) -> int | None:
        """When a parked event was parked (ms); None when it is not parked."""
        score = await self.redis.zscore(self.keys.parked_order, event_id)
        return None if score is None else int(score)

    async def parked_count(self) -> int:
        return int(await self.redis.zcard(self.keys.parked_order))

    async def replay(self, event_id: str) -> bool:
        """Move a parked event to the replays; False when no such event is parked. Atomic
        (WATCH): two admins replaying it at once send it once."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(k.parked)
                    raw = await pipe.hget(k.parked, event_id)
                    if raw is None:
                        await pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.hdel(k.parked, event_id)
                    pipe.zrem(k.parked_order, event_id)
                    pipe.rpush(k.replay, raw)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def next_replay(self, lease_ms: int) -> Parked | None:
        """The first replay, leased to this process for lease_ms, or None (none, or another
        process is sending it)."""
        k = self.keys
        if not await self.redis.exists(k.replay):
            return None
        if not await self.redis.set(k.replay_lease, self.consumer, nx=True, px=lease_ms):
            if _text(await self.redis.get(k.replay_lease) or b"") != self.consumer:
                return None
            await self.redis.pexpire(k.replay_lease, lease_ms)
        raw = await self.redis.lindex(k.replay, 0)
        if raw is None:
            await self.redis.delete(k.replay_lease)
            return None
        return _decode_parked(raw)

    async def replayed(self, event: Event) -> None:
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpop(k.replay)
            pipe.delete(k.replay_lease)
            pipe.hdel(k.first_failure, f"replay:{event.id}")
            await pipe.execute()

    async def lag(self) -> int:
        """Events of the stream the webhook has not acknowledged: not yet read by any
        process, and read but pending."""
        for group in await self.redis.xinfo_groups(self.keys.events):
            g = {_text(key): value for key, value in group.items()}
            if _text(g.get("name")) == self.keys.group:
                lag = g.get("lag")
                return int(g.get("pending") or 0) + (int(lag) if lag is not None else 0)
        return 0


def _pairs(fields: list[Any]) -> dict[Any, Any]:
    return dict(zip(fields[::2], fields[1::2], strict=True))
