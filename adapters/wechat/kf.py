"""Pulling WeCom customer-service (微信客服) messages: the callback only says "there is
something for open_kfid X" (kf_msg_or_event, with a sync token valid 10 minutes); the
messages themselves come from kf/sync_msg, page by page, from a cursor we keep.

- A notice is recorded in Redis before the callback answers (``pending``: a counter per
  corp and open_kfid; ``sync_token``: the latest token), so a notice survives the process
  that took it.
- One process at a time pulls a given open_kfid, under a Redis lock. The cursor moves only
  after a page's messages are ingested, so a crash re-reads the page and dedupe (msgid)
  keeps one copy of each message.
- The pending mark is cleared only if no notice came during the pull (WATCH), and every
  process sweeps the pending marks, so no notice is lost to a race or a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import WatchError

from adapters.loops import Outage

log = logging.getLogger("zhongtai.wechat")

LOCK_TTL_S = 60.0
SYNC_TOKEN_TTL_MS = 9 * 60 * 1000  # WeCom's sync token lasts 10 minutes
PAGE_LIMIT = 1000

# sync(corp name, open_kfid, cursor, sync token or "") -> sync_msg's answer
Sync = Callable[[str, str, str, str], Awaitable[dict[str, Any]]]
# handle(corp name, one msg_list entry)
Handle = Callable[[str, dict[str, Any]], Awaitable[None]]


class KfPuller:
    def __init__(self, redis: Any, key: Callable[..., str], sync: Sync, handle: Handle) -> None:
        self.redis = redis
        self._key = key
        self._sync = sync
        self._handle = handle
        self.pending = key("kf", "pending")  # hash "corp|open_kfid" -> notice counter
        self.sync_tokens = key("kf", "sync_token")  # hash "corp|open_kfid" -> "ms|token"
        self._running: dict[str, asyncio.Task[None]] = {}
        # Per account: a WeChat API or Redis failure is said once, not at every sweep.
        self._outages: dict[str, Outage] = {}

    def cursor_key(self, corp: str, open_kfid: str) -> str:
        return self._key("kf", "cursor", corp, open_kfid)

    async def notice(self, corp: str, open_kfid: str, sync_token: str) -> None:
        """Record a kf_msg_or_event notice (durably), then start pulling here."""
        field = f"{corp}|{open_kfid}"
        async with self.redis.pipeline(transaction=True) as pipe:
            if sync_token:
                pipe.hset(self.sync_tokens, field, f"{int(time.time() * 1000)}|{sync_token}")
            pipe.hincrby(self.pending, field, 1)
            await pipe.execute()
        self.kick(field)

    def kick(self, field: str) -> None:
        task = self._running.get(field)
        if task is None or task.done():
            self._running[field] = asyncio.create_task(self._drain(field), name=f"kf-{field}")

    async def sweep(self) -> None:
        """Pull every account with a notice not yet handled (by a process that died, or
        while another process held the lock)."""
        for raw in await self.redis.hkeys(self.pending):
            self.kick(raw.decode())

    async def _drain(self, field: str) -> None:
        lock_key = self._key("kf", "lock", field)
        try:
            while True:
                lock = self.redis.lock(lock_key, timeout=LOCK_TTL_S, blocking=False)
                if not await lock.acquire(blocking=False):
                    return  # another process pulls; it re-checks pending after its lock
                try:
                    while not await self._pull_once(field, lock):
                        pass
                finally:
                    try:
                        await lock.release()
                    except Exception:
                        log.debug("wechat kf: lock release failed", exc_info=True)
                # A notice taken by a process that found our lock held: pull it now.
                if not await self.redis.hexists(self.pending, field):
                    self._outage(field).succeeded()
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The mark stays pending: the next sweep tries again.
            self._outage(field).failed(exc)

    def _outage(self, field: str) -> Outage:
        if field not in self._outages:
            self._outages[field] = Outage(log, f"wechat kf: pulling {field}")
        return self._outages[field]

    async def _pull_once(self, field: str, lock: Any) -> bool:
        """Pull everything there is; True when no notice came meanwhile (pending cleared)."""
        seen = await self.redis.hget(self.pending, field)
        if seen is None:
            return True
        corp, _, open_kfid = field.partition("|")
        cursor_key = self.cursor_key(corp, open_kfid)
        raw_cursor = await self.redis.get(cursor_key)
        cursor = raw_cursor.decode() if raw_cursor else ""
        sync_token = await self._fresh_sync_token(field)
        while True:
            answer = await self._sync(corp, open_kfid, cursor, sync_token)
            for item in answer.get("msg_list") or []:
                if isinstance(item, dict):
                    await self._handle(corp, item)
            next_cursor = str(answer.get("next_cursor") or "")
            if next_cursor:
                cursor = next_cursor
                await self.redis.set(cursor_key, cursor)
            await lock.extend(LOCK_TTL_S, replace_ttl=True)
            if not answer.get("has_more"):
                break
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(self.pending)
                if await pipe.hget(self.pending, field) != seen:
                    return False  # a notice came during the pull: pull again
                pipe.multi()
                pipe.hdel(self.pending, field)
                await pipe.execute()
                return True
            except WatchError:
                return False

    async def _fresh_sync_token(self, field: str) -> str:
        raw = await self.redis.hget(self.sync_tokens, field)
        if not raw:
            return ""
        at, _, token = raw.decode().partition("|")
        if int(at or 0) + SYNC_TOKEN_TTL_MS < time.time() * 1000:
            return ""  # expired: sync_msg works without it, at a lower rate limit
        return token

    async def aclose(self) -> None:
        tasks = [t for t in self._running.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
