"""Cross-process delivery: one pub/sub channel per gateway process (node), one subscriber
connection per process, payloads fanned out to handlers registered by topic.

On a Redis Cluster the channels are shard channels (SPUBLISH/SSUBSCRIBE): they carry the
tenant's hash tag, so they live with its keys on one master instead of being broadcast to
every node of the cluster as PUBLISH is. When the slot moves, Redis ends the subscription
(sunsubscribe) and run() subscribes again, on the slot's new master.

Pub/sub is fire and forget: whatever was published to this node while its subscription was
down is gone. So the bus says when the subscription is back after a loss
(``on_resubscribed``), and those who deliver through it resync from what Redis stores."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from adapters.loops import Outage, stop_if_cancelled
from presence.keys import PresenceKeys

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[None]]
Resubscribed = Callable[[], None]

# Redis confirms every (re)subscription with one of these; redis-py's own reconnect
# resubscribes silently, so the confirmation is how a loss it absorbed is seen.
CONFIRMATIONS = frozenset({"subscribe", "ssubscribe"})


class Envelope(msgspec.Struct, array_like=True):
    topic: str
    payload: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Envelope).decode


class NodeBus:
    def __init__(self, redis: Any, subscriber: Any, keys: PresenceKeys, node_id: str) -> None:
        self.redis = redis
        self.subscriber = subscriber
        self.node_id = node_id
        self.channel = keys.node_channel(node_id)
        self._keys = keys
        self._handlers: dict[str, Handler] = {}
        self.subscribed = asyncio.Event()
        self._pubsub: Any = None
        # The cluster client's route says whether the channels are shard channels.
        self.sharded: bool = getattr(getattr(redis, "route", None), "clustered", False)
        self._resubscribed: list[Resubscribed] = []
        self._confirmed = False

    def on(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def on_resubscribed(self, callback: Resubscribed) -> None:
        """Call ``callback`` each time the subscription is confirmed again after a loss (not
        the first time); it must not block: the bus reads on once it returns."""
        self._resubscribed.append(callback)

    def _subscription_confirmed(self) -> None:
        if not self._confirmed:
            self._confirmed = True
            return
        log.info("node subscription %s is back; resyncing", self.channel)
        for callback in self._resubscribed:
            try:
                callback()
            except Exception:
                log.exception("a resubscription callback failed")

    async def send(self, node_id: str, topic: str, payload: bytes) -> None:
        if node_id == self.node_id:
            await self._handle(topic, payload)
            return
        publish = self.redis.spublish if self.sharded else self.redis.publish
        await publish(self._keys.node_channel(node_id), _encode(Envelope(topic, payload)))

    async def _handle(self, topic: str, payload: bytes) -> None:
        handler = self._handlers.get(topic)
        if handler is None:
            log.warning("no handler for node topic %r", topic)
            return
        try:
            await handler(payload)
        except Exception:
            log.exception("node topic %r handler failed", topic)

    async def resubscribe(self) -> None:
        """Drop the subscription (the master moved): run() subscribes again, through a new
        connection, on whichever node is master now."""
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is not None:
            await pubsub.connection.disconnect()

    async def run(self) -> None:
        """Receive until cancelled; resubscribes after a lost connection, backing off while
        Redis stays away (said once when the loss starts and once when it ends)."""
        outage = Outage(log, f"node subscription {self.channel}", max_delay_s=5.0)
        while True:
            # Confirmations are read (they say the subscription is back), and so is the
            # server's own sunsubscribe on a cluster (the slot moved).
            pubsub = self._pubsub = self.subscriber.pubsub()
            try:
                subscribe = pubsub.ssubscribe if self.sharded else pubsub.subscribe
                await subscribe(self.channel)
                outage.succeeded()
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message["type"] == "sunsubscribe":
                        log.info("node subscription moved with the tenant's slot; resubscribing")
                        break
                    if message["type"] in CONFIRMATIONS:
                        self._subscription_confirmed()
                        continue
                    if message["type"] not in ("message", "smessage"):
                        continue
                    try:
                        envelope = _decode(message["data"])
                    except msgspec.DecodeError:
                        log.warning("dropped a malformed node message on %s", self.channel)
                        continue
                    await self._handle(envelope.topic, envelope.payload)
                    stop_if_cancelled()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                stop_if_cancelled()
                await asyncio.sleep(outage.failed(exc))
            finally:
                await pubsub.aclose()
