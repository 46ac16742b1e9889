"""A lease in Redis naming the one process that reads a mailbox.

Several gateway processes run the email channel; each mailbox should have one IMAP reader
(two would fetch every mail twice and some providers cap connections). The holder renews
the lease while it reads; when it stops (or dies) the lease is released (or lapses) and a
standby process takes over. Compare-and-renew and compare-and-delete use WATCH, so a
process never extends or deletes a lease another process holds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import WatchError

# Seconds a lease lasts without renewal; renewed every third of it. Module-level so that
# tests can shorten it.
LEASE_S = 30.0


class Lease:
    def __init__(self, redis: Any, key: str, holder: str) -> None:
        self.redis = redis
        self.key = key
        self.holder = holder

    @property
    def seconds(self) -> float:
        return LEASE_S

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours)."""
        if await self.redis.set(self.key, self.holder, nx=True, px=int(LEASE_S * 1000)):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease if it is ours; False if another process holds it now."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(self.key)
                if not await self._ours(pipe):
                    await pipe.unwatch()
                    return False
                pipe.multi()
                pipe.pexpire(self.key, int(LEASE_S * 1000))
                await pipe.execute()
                return True
        except WatchError:
            return False

    async def keep(self) -> None:
        """Renew until the lease is lost; then return."""
        failures = 0
        while True:
            await asyncio.sleep(LEASE_S / 3)
            try:
                if not await self.renew():
                    return
                failures = 0
            except Exception:
                # Redis unreachable for a moment: keep reading until the lease would have
                # run out, then stop, since another process may have it by then.
                failures += 1
                if failures >= 2:
                    raise

    async def release(self) -> None:
        """Give the lease up if it is ours, so a standby takes over without waiting."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(self.key)
                if not await self._ours(pipe):
                    await pipe.unwatch()
                    return
                pipe.multi()
                pipe.delete(self.key)
                await pipe.execute()
        except Exception:
            pass  # it lapses by itself

    async def _ours(self, pipe: Any) -> bool:
        holder = await pipe.get(self.key)
        return holder is not None and holder.decode() == self.holder
