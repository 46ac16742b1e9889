"""Access tokens shared by every gateway process through Redis.

A token lives in one Redis key with its expiry and the time to refresh it. Refreshing is
single-flight across processes: whoever takes the lock (SET NX PX, through redis-py's Lock,
whose release only deletes its own lock) fetches; the others keep using the old token while
it is still valid, or wait for the new one with a deadline. Several processes therefore never
fetch at once, and never invalidate each other's token (WeChat's stable_token in normal mode
would hand them the same token anyway; in force mode each call invalidates the last one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

log = logging.getLogger("zhongtai.wechat")

# fetch(force) -> (access token, seconds it is valid)
Fetch = Callable[[bool], Awaitable[tuple[str, float]]]

LOCK_TTL_S = 15.0
WAIT_S = 15.0
POLL_S = 0.05
# Never refetch more often than this, even when WeChat hands back a token about to expire.
MIN_REFRESH_INTERVAL_S = 30.0


class TokenUnavailable(Exception):
    """No access token could be had (the fetch failed, or waiting for another process's
    fetch timed out)."""


class _Cached(msgspec.Struct, array_like=True):
    token: str
    expires_at: float
    refresh_at: float


_decode = msgspec.msgpack.Decoder(_Cached).decode
_encode = msgspec.msgpack.Encoder().encode


class TokenCache:
    def __init__(
        self,
        redis: Any,
        key: str,
        fetch: Fetch,
        *,
        refresh_ahead_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.key = key
        self.lock_key = key + ":lock"
        self._fetch = fetch
        self.refresh_ahead_s = refresh_ahead_s
        self.clock = clock

    async def _read(self) -> _Cached | None:
        raw = await self.redis.get(self.key)
        if raw is None:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            return None

    async def _write(self, token: str, expires_in: float) -> _Cached:
        now = self.clock()
        expires_at = now + expires_in
        refresh_at = max(expires_at - self.refresh_ahead_s, now + MIN_REFRESH_INTERVAL_S)
        cached = _Cached(token, expires_at, min(refresh_at, expires_at))
        await self.redis.set(self.key, _encode(cached), px=max(1, int(expires_in * 1000)))
        return cached

    async def get(self) -> str:
        """A valid token: the cached one, refreshed ahead of its expiry by one process."""
        cached = await self._read()
        now = self.clock()
        if cached is not None and now < cached.refresh_at:
            return cached.token
        if cached is not None and now < cached.expires_at:
            # Due for refresh but still valid: refresh if nobody else is, else use it.
            fresh = await self._refresh_if_free(stale=cached.token)
            return fresh or cached.token
        return await self._refresh(stale=None, rejected=None)

    async def rejected(self, token: str) -> str:
        """WeChat refused ``token`` (40001, 42001, 40014): a newer token, fetched once for
        all processes. A token someone else fetched meanwhile is used as it is."""
        cached = await self._read()
        if cached is not None and cached.token != token and self.clock() < cached.expires_at:
            return cached.token
        return await self._refresh(stale=token, rejected=token)

    async def _refresh_if_free(self, stale: str) -> str | None:
        lock = self.redis.lock(self.lock_key, timeout=LOCK_TTL_S, blocking=False)
        if not await lock.acquire(blocking=False):
            return None
        try:
            return await self._fetch_and_store(stale, None)
        except TokenUnavailable:
            log.warning("wechat: refreshing the token %s ahead of expiry failed", self.key)
            return None
        finally:
            await _release(lock)

    async def _refresh(self, stale: str | None, rejected: str | None) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            lock = self.redis.lock(self.lock_key, timeout=LOCK_TTL_S, blocking=False)
            if await lock.acquire(blocking=False):
                try:
                    return await self._fetch_and_store(stale, rejected)
                finally:
                    await _release(lock)
            # Another process is fetching: wait for its token (polled, with a deadline; if
            # it died, its lock expires and this loop takes over).
            cached = await self._read()
            if cached is not None and cached.token != stale and self.clock() < cached.expires_at:
                return cached.token
            if loop.time() > deadline:
                raise TokenUnavailable(f"timed out waiting for another process's token {self.key}")
            await asyncio.sleep(POLL_S)

    async def _fetch_and_store(self, stale: str | None, rejected: str | None) -> str:
        # Holding the lock: someone may have stored a new token just before we took it.
        cached = await self._read()
        now = self.clock()
        if cached is not None and cached.token != stale and now < cached.refresh_at:
            return cached.token
        token, expires_in = await self._fetch(False)
        if rejected is not None and token == rejected:
            # WeChat still hands out the token it refused: only a forced refresh helps.
            token, expires_in = await self._fetch(True)
        await self._write(token, expires_in)
        log.info("wechat: new access token for %s, valid %d s", self.key, expires_in)
        return token


async def _release(lock: Any) -> None:
    try:
        await lock.release()
    except Exception:  # expired meanwhile (LockNotOwnedError) or Redis away: it expires
        log.debug("wechat: token lock release failed", exc_info=True)
