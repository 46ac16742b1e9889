"""``[redis] min_replica_acks``: a message is acknowledged only once replicas have it.

Redis replicates asynchronously: a write the master answered may be lost if the master fails
before a replica has it, and a failover then promotes a replica without it. With
``min_replica_acks = N`` the gateway sends ``WAIT N timeout`` after storing a customer
message or an agent reply and before telling the channel or the socket it is stored, so that
what was acknowledged survives a failover.

WAIT counts the replicas that have every write *of its own connection*: it goes on the
multiplexed connection (gateway/redis/lane.py) that carried the write, and only counts when
that connection did not change in between (``Lane.generation``). One WAIT covers every write
sent before it, so callers share them: while one is out, those who come wait for the next,
sent as soon as it returns (a group commit). WAIT holds that connection for as long as it
waits, which is why the timeout should stay short.

When too few replicas confirm in time, the message is stored on the master but may not
survive a failover: the caller gets ``NotReplicated`` (a RoutingError, code
``not_replicated``), which the web chat and the agent socket show as an error frame and the
webhooks as a 503, so that the client sends it again; the retry is recognised as a duplicate
(ingest dedupes, replies are stored once per client_msg_id) and confirmed then.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from adapters.contract import NotDurable
from gateway.config import RedisConfig
from router.results import RoutingError

log = logging.getLogger(__name__)


class NotReplicated(RoutingError, NotDurable):
    """An error frame to an agent (RoutingError), and to adapters the contract's NotDurable."""

    def __init__(self, detail: str) -> None:
        super().__init__("not_replicated", detail)


class ReplicaAcks:
    """``generation()`` before the write, ``await confirm(generation)`` after it."""

    def __init__(self, redis: Any, config: RedisConfig, timeouts: Any = None) -> None:
        self.redis = redis
        self.replicas = config.min_replica_acks
        self.timeout_ms = config.min_replica_timeout_ms
        self.timeouts = timeouts  # a prometheus Counter, counted when too few confirm
        self._next: asyncio.Future[tuple[int, int]] | None = None
        self._running: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    def generation(self) -> int:
        return self.redis.lane.current_generation() if self.enabled else 0

    async def confirm(self, generation: int) -> None:
        """Return once ``min_replica_acks`` replicas have what this connection wrote up to
        now (nothing to do when off); else raise NotReplicated."""
        if not self.enabled:
            return
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        waiting = self._next
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(), name="redis-replica-acks")
        try:
            acked, answered_on = await asyncio.shield(waiting)
        except Exception as exc:
            self._missed(f"WAIT failed: {exc}")
        else:
            if answered_on != generation:
                self._missed("the connection to Redis changed after the write")
            elif acked < self.replicas:
                self._missed(f"{acked} of {self.replicas} replicas in {self.timeout_ms} ms")

    async def _run(self) -> None:
        """One WAIT at a time, each for everyone who asked before it was sent."""
        while self._next is not None:
            waiting, self._next = self._next, None
            try:
                acked = await self.redis.execute_command("WAIT", self.replicas, self.timeout_ms)
            except Exception as exc:
                if not waiting.done():
                    waiting.set_exception(exc)
                waiting.exception()  # retrieved: each caller sees it through its shield
                continue
            if not waiting.done():
                waiting.set_result((int(acked), self.redis.lane.generation))

    def _missed(self, why: str) -> None:
        if self.timeouts is not None:
            self.timeouts.inc()
        log.warning("a stored message is not confirmed by a replica: %s", why)
        raise NotReplicated(
            f"stored, but not yet confirmed by a replica ({why}); it may not survive a Redis "
            "failover: send it again (the retry is recognised)"
        )
