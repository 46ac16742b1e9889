"""Following the master through a failover, and knowing which calls may be sent again.

With ``[redis] sentinels`` every connection asks the sentinels where the master is when it
connects (redis-py's Sentinel does the asking). A connection learns that the master moved in
one of three ways, and each makes it connect again, asking afresh:

- an answer READONLY: the node it talks to was demoted to a replica;
- a refused or lost connection: the node is down;
- ``+switch-master`` on a sentinel's pub/sub (``SwitchWatch``): the sentinels promoted a
  replica. This one matters most: after a forced failover the old master keeps taking
  writes until the sentinels reconfigure it, seconds later, and whatever it took in between
  is thrown away when it turns replica.

Sending a command again is safe when it did not run, or when running it twice is the same as
once. ``NotSent`` (no connection could be made) and ``NotRun`` (sent after an answer READONLY
on the same connection: a replica refuses every write) did not run; a command lost in flight
may have, and is sent again only when it reads (``READS``), publishes (``AT_LEAST_ONCE``) or
is an idempotent script (``LuaContract.idempotent``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from adapters.retryable import REFUSALS, noreplicas
from gateway.config import RedisConfig

log = logging.getLogger(__name__)

SWITCH_CHANNEL = "+switch-master"


class NotSent(RedisConnectionError):
    """No connection to the master could be made: the command was never sent."""


class NotRun(RedisConnectionError):
    """The command was sent after the node answered READONLY: a replica, it ran no write."""


# Commands that change nothing: sent again whatever became of them.
READS = frozenset(
    b"""GET MGET STRLEN EXISTS TYPE TTL PTTL HGET HMGET HGETALL HEXISTS HLEN HKEYS HVALS HSCAN
    LRANGE LLEN LINDEX SMEMBERS SISMEMBER SMISMEMBER SCARD SSCAN ZRANGE ZREVRANGE ZRANGEBYSCORE
    ZREVRANGEBYSCORE ZSCORE ZMSCORE ZRANK ZREVRANK ZCARD ZCOUNT ZSCAN XRANGE XREVRANGE XLEN
    SCAN PING TIME INFO""".split()
)
# Live delivery between processes (the node bus): a PUBLISH lost in flight is sent again, so
# that a stored message is not shown as failed for it; a frame may then come twice, and every
# frame that matters carries an id its client dedupes by.
AT_LEAST_ONCE = frozenset([b"PUBLISH", b"SPUBLISH"])


def resendable(args: tuple[object, ...]) -> bool:
    """Whether the command may be sent again whatever became of it (READS, AT_LEAST_ONCE)."""
    name = args[0]
    name = name.encode() if isinstance(name, str) else name
    return isinstance(name, bytes) and (name.upper() in READS or name.upper() in AT_LEAST_ONCE)


def never_ran(error: BaseException) -> bool:
    """Whether the failed command certainly did not change anything."""
    # MASTERDOWN: a replica cut off from its master; NOREPLICAS: a master short of the
    # replicas its min-replicas-to-write asks for. LOADING: a restarted Redis reading its
    # data. On a cluster, TRYAGAIN: a script's keys half migrated; CLUSTERDOWN: the slot has
    # no master yet. Each refuses before running anything.
    # The same refusals answer a customer "send it again" (adapters/retryable.py).
    return isinstance(error, (NotSent, NotRun, BusyLoadingError, *REFUSALS)) or noreplicas(error)


def sentinel_addresses(config: RedisConfig) -> list[tuple[str, int]]:
    """``[redis] sentinels`` as (host, port); config.py has checked the shape."""
    pairs = (address.rpartition(":") for address in config.sentinels)
    return [(host.strip("[]"), int(port)) for host, _, port in pairs]


def describe(config: RedisConfig, url: str) -> str:
    """Which Redis errors are about, with no credentials in it."""
    if config.sentinels:
        return f"master {config.sentinel_master!r} of sentinels {', '.join(config.sentinels)}"
    if config.cluster_nodes:
        return f"Redis Cluster {', '.join(config.cluster_nodes)}"
    return url


# redis-py names each sentinel it could not ask by its client's repr: the pool's and the
# connection's every setting, some 700 characters, with the address deep inside.
_CLIENT_REPR = re.compile(r"<redis\.[\w.]+\.Redis\(.*?\bhost=([^,]+),port=(\d+),.*?\)>\)>\)>")


class NamedSentinel(Sentinel):
    """Sentinel whose "no master found" names each sentinel host:port, so that the error
    start-up prints and /readyz shows says which sentinel failed and how, readably."""

    async def discover_master(self, service_name: str) -> Any:
        try:
            return await super().discover_master(service_name)
        except MasterNotFoundError as exc:
            raise MasterNotFoundError(_CLIENT_REPR.sub(r"\1:\2", str(exc))) from exc


def make_sentinel(config: RedisConfig, **connection_kwargs: Any) -> Sentinel:
    """The sentinels, asked with their own credentials (not the data nodes')."""
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": config.connect_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "protocol": 2,
        "decode_responses": True,
    }
    if config.sentinel_username:
        sentinel_kwargs["username"] = config.sentinel_username
    if config.sentinel_password:
        sentinel_kwargs["password"] = config.sentinel_password
    return NamedSentinel(
        sentinel_addresses(config), sentinel_kwargs=sentinel_kwargs, **connection_kwargs
    )


class Retry:
    """Sending again through a failover: pauses growing from 50 ms to 0.5 s, for up to
    ``budget_s`` in all."""

    __slots__ = ("budget_s", "deadline", "pause")

    def __init__(self, budget_s: float) -> None:
        self.budget_s, self.deadline, self.pause = budget_s, 0.0, 0.05

    async def again(self, error: BaseException) -> bool:
        """Whether to send again (after a pause), or let ``error`` go to the caller."""
        if self.budget_s <= 0:
            return False
        now = asyncio.get_running_loop().time()
        if not self.deadline:
            self.deadline = now + self.budget_s
            # Debug: a failover makes hundreds of these; the lane and the watch say it once.
            log.debug("Redis: %s; sending again for up to %.1f s", error, self.budget_s)
        if now + self.pause > self.deadline:
            return False
        await asyncio.sleep(self.pause)
        self.pause = min(self.pause * 2, 0.5)
        return True


Switched = Callable[[tuple[str, int]], Awaitable[None]]


class SwitchWatch:
    """Listens for ``+switch-master`` of our master on every sentinel and calls each
    registered callback with the new address (once per new address, however many sentinels
    tell). A sentinel that goes away is listened to again when it comes back."""

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.master = config.sentinel_master
        self._callbacks: list[Switched] = []
        self._last: tuple[str, int] | None = None
        self.switches = 0

    def on_switch(self, callback: Switched) -> None:
        self._callbacks.append(callback)

    async def run(self) -> None:
        await asyncio.gather(
            *(self._listen(host, port) for host, port in sentinel_addresses(self.config))
        )

    async def _listen(self, host: str, port: int) -> None:
        quiet = False
        while True:
            client = Redis(
                host=host,
                port=port,
                username=self.config.sentinel_username,
                password=self.config.sentinel_password,
                socket_connect_timeout=self.config.connect_timeout_s,
                socket_timeout=None,
                protocol=2,
                decode_responses=True,
            )
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(SWITCH_CHANNEL)
                    quiet = False
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self._announced(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not quiet:  # once per outage, not once per attempt
                    log.warning("sentinel %s:%d: not listening for failovers (%s)", host, port, exc)
                    quiet = True
                await asyncio.sleep(1.0)
            finally:
                await client.aclose()

    async def _announced(self, data: str) -> None:
        # "<master name> <old ip> <old port> <new ip> <new port>"
        parts = data.split()
        if len(parts) != 5 or parts[0] != self.master or not parts[4].isdigit():
            return
        address = (parts[3], int(parts[4]))
        if address == self._last:
            return
        self._last = address
        self.switches += 1
        log.warning(
            "Redis failover: the sentinels moved master %r from %s:%s to %s:%d",
            self.master,
            parts[1],
            parts[2],
            *address,
        )
        for callback in self._callbacks:
            try:
                await callback(address)
            except Exception:
                log.exception("reconnecting after the failover failed")


async def probe_writes(redis: Any, tenant: str, node_id: str) -> None:
    """A real write, as readiness needs: a replica (READONLY), a master refusing writes
    (MASTERDOWN, min-replicas-to-write), a cluster slot with no master (CLUSTERDOWN) or no
    master at all raises, at once: on the lane, following only a reshard's MOVED or ASK, not
    sent again (the lane connects afresh for the next call)."""
    key = f"zt:{{{tenant}}}:ready:{node_id}"
    call_routed = getattr(redis, "call_routed", None)
    if call_routed is None:
        await redis.set(key, b"1", px=10_000)
    else:
        await call_routed(("SET", key, b"1", "PX", 10_000))
