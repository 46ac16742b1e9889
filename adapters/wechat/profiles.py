"""Customer profiles (name, unionid), looked up in the background and cached in Redis.

A lookup never delays ingest: a message is stored with whatever the cache holds, and a
customer not in the cache is looked up after the callback answered, for the next message.
A SET NX guard keeps several processes from looking one customer up at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("zhongtai.wechat")

GUARD_TTL_S = 60
MAX_IN_FLIGHT = 100

Lookup = Callable[[], Awaitable[dict[str, str]]]


class Profiles:
    def __init__(self, redis: Any, key: Callable[..., str], ttl_s: float) -> None:
        self.redis = redis
        self._key = key
        self.ttl_s = max(1, int(ttl_s))
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def profile_key(self, account: str, customer: str) -> str:
        return self._key("profile", account, customer)

    def unionid_key(self, unionid: str) -> str:
        return self._key("unionid", unionid)

    async def cached(self, account: str, customer: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.profile_key(account, customer))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def refresh_later(self, account: str, customer: str, lookup: Lookup) -> None:
        name = f"{account}|{customer}"
        if name in self._tasks or len(self._tasks) >= MAX_IN_FLIGHT:
            return
        task = asyncio.create_task(self._refresh(account, customer, lookup))
        self._tasks[name] = task
        task.add_done_callback(lambda _: self._tasks.pop(name, None))

    async def _refresh(self, account: str, customer: str, lookup: Lookup) -> None:
        key = self.profile_key(account, customer)
        try:
            if not await self.redis.set(key + ":lookup", b"1", nx=True, ex=GUARD_TTL_S):
                return  # another process looks this customer up
            profile = {k: v for k, v in (await lookup()).items() if v}
            profile.setdefault("looked_up", "1")  # an empty answer is cached too
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=profile)
                pipe.expire(key, self.ttl_s)
                if unionid := profile.get("unionid"):
                    # Recognise one person across our accounts: unionid -> "account|id".
                    pipe.sadd(self.unionid_key(unionid), f"{account}|{customer}")
                    pipe.expire(self.unionid_key(unionid), self.ttl_s)
                await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("wechat: profile lookup of %s on %s failed: %s", customer, account, exc)

    async def aclose(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
