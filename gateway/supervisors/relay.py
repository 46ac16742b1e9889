"""Across processes: a gateway may run several processes on one Redis, and a customer's
message, an agent's reply or a routing decision passes through whichever process holds that
customer's or agent's socket, not necessarily the lead's. The relay carries what the change
tap hears to the processes whose leads want it, over the existing node bus
(gateway/redis/bus.py), at no cost to a process nobody watches from elsewhere:

- every ANNOUNCE_S (and at once when a watch starts), each process with supervisor sockets
  tells every live process which conversations its leads watch; an announcement not
  renewed within EXPIRE_S is forgotten, so a dead process's watches lapse;
- a message or close in a conversation watched elsewhere is published to those processes
  only (a dict lookup for every other message);
- a change a wallboard shows is published to the processes with leads, coalesced to one per
  [supervisor] wallboard_min_interval_ms;
- a complaint's deadline alert is published to the processes with leads, each time.

What arrives is handed to the local tap, which wakes local sockets only (nothing is relayed
twice)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec

from adapters.model import Message
from gateway.redis.bus import NodeBus
from gateway.supervisors.protocol import DeadlineAlert
from gateway.supervisors.tap import ChangeTap
from router.reads import text

log = logging.getLogger(__name__)

ANNOUNCE_S = 5.0
EXPIRE_S = 3 * ANNOUNCE_S


class Announce(msgspec.Struct, array_like=True):
    node: str
    boards: bool  # whether the node has supervisor sockets (wallboards) open
    watched: list[str]


class Relayed(msgspec.Struct, array_like=True):
    conversation_id: str
    message: Message | None = None
    reason: str | None = None  # set for a close


class Relay:
    def __init__(self, tap: ChangeTap, bus: NodeBus, nodes_key: str, interval_s: float) -> None:
        self.tap, self.bus, self.nodes_key, self.interval_s = tap, bus, nodes_key, interval_s
        self._watched_at: dict[str, dict[str, float]] = {}  # conversation -> node -> expiry
        self._boards_at: dict[str, float] = {}  # node -> expiry
        self._out: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._announce_now = asyncio.Event()
        self._encode = msgspec.msgpack.Encoder().encode
        bus.on("sup.announce", self._on_announce)
        bus.on("sup.relayed", self._on_relayed)
        bus.on("sup.changed", self._on_changed)
        bus.on("sup.deadline", self._on_deadline)
        tap.remote = self

    # Called by the tap (synchronously, inside the flows): only queue.

    def message(self, conversation_id: str, message: Message) -> None:
        self._forward(Relayed(conversation_id=conversation_id, message=message))

    def closed(self, conversation_id: str, reason: str) -> None:
        self._forward(Relayed(conversation_id=conversation_id, reason=reason))

    def changed(self) -> None:
        if self._boards_at:
            self._changed.set()

    def watches_changed(self) -> None:
        self._announce_now.set()

    def deadline(self, alert: DeadlineAlert) -> None:
        now = time.monotonic()
        payload = self._encode(alert)
        for node, expiry in list(self._boards_at.items()):
            if expiry > now:
                self._out.put_nowait((node, "sup.deadline", payload))

    def _forward(self, relayed: Relayed) -> None:
        nodes = self._watched_at.get(relayed.conversation_id)
        if not nodes:
            return
        now = time.monotonic()
        payload = self._encode(relayed)
        for node, expiry in list(nodes.items()):
            if expiry > now:
                self._out.put_nowait((node, "sup.relayed", payload))

    # Received from other processes.

    async def _on_announce(self, payload: bytes) -> None:
        announce = msgspec.msgpack.decode(payload, type=Announce)
        expiry = time.monotonic() + EXPIRE_S
        for nodes in self._watched_at.values():
            nodes.pop(announce.node, None)
        for conversation_id in announce.watched:
            self._watched_at.setdefault(conversation_id, {})[announce.node] = expiry
        if announce.boards:
            self._boards_at[announce.node] = expiry
        else:
            self._boards_at.pop(announce.node, None)
        self._expire()

    async def _on_relayed(self, payload: bytes) -> None:
        relayed = msgspec.msgpack.decode(payload, type=Relayed)
        if relayed.message is not None:
            self.tap.message(relayed.conversation_id, relayed.message, local=True)
        elif relayed.reason is not None:
            self.tap.closed(relayed.conversation_id, relayed.reason, local=True)

    async def _on_changed(self, payload: bytes) -> None:
        self.tap.changed(local=True)

    async def _on_deadline(self, payload: bytes) -> None:
        self.tap.deadline(msgspec.msgpack.decode(payload, type=DeadlineAlert), local=True)

    def _expire(self) -> None:
        now = time.monotonic()
        for conversation_id in list(self._watched_at):
            nodes = {n: e for n, e in self._watched_at[conversation_id].items() if e > now}
            if nodes:
                self._watched_at[conversation_id] = nodes
            else:
                del self._watched_at[conversation_id]
        self._boards_at = {n: e for n, e in self._boards_at.items() if e > now}

    # The relay's tasks, started and cancelled by the app (site.py).

    async def run(self) -> None:
        tasks = [self._send_loop(), self._announce_loop(), self._changed_loop()]
        await asyncio.gather(*tasks)

    async def _send_loop(self) -> None:
        while True:
            node, topic, payload = await self._out.get()
            try:
                await self.bus.send(node, topic, payload)
            except Exception as exc:
                log.warning("supervisor relay to %s failed: %s", node, exc)

    async def _announce_loop(self) -> None:
        while True:
            self._announce_now.clear()
            try:
                await self._announce()
            except Exception as exc:
                log.warning("supervisor relay: announcing failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._announce_now.wait(), ANNOUNCE_S)

    async def _announce(self) -> None:
        self._expire()
        boards, watched = self.tap.local_interest()
        if not boards and not watched and not self._announced_interest:
            return  # nothing to say, and nothing said before that must be taken back
        self._announced_interest = bool(boards or watched)
        payload = self._encode(Announce(node=self.bus.node_id, boards=boards, watched=watched))
        for node in await self._other_nodes():
            self._out.put_nowait((node, "sup.announce", payload))

    _announced_interest = False

    async def _other_nodes(self) -> list[str]:
        nodes = [text(n) for n in await self.bus.redis.zrange(self.nodes_key, 0, -1)]
        return [n for n in nodes if n != self.bus.node_id]

    async def _changed_loop(self) -> None:
        payload = b""
        while True:
            await self._changed.wait()
            self._changed.clear()
            now = time.monotonic()
            for node, expiry in list(self._boards_at.items()):
                if expiry > now:
                    self._out.put_nowait((node, "sup.changed", payload))
            await asyncio.sleep(self.interval_s)
