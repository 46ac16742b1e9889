"""The customer sockets this process holds, and delivery to every socket of a visitor.

Each process keeps its own sockets; Redis records which processes hold sockets of a visitor
(visitors.py), and a frame for a visitor goes to the local sockets directly and to the other
processes through ``host.send_to_node``. Kept apart from the frame handlers because replies
from agents, queue positions and the page's own echo all leave through here.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from adapters.contract import AdapterHost, DeliveryError
from adapters.webchat import frames
from adapters.webchat.session import CLOSE_GOING_AWAY, Session, send_raw
from adapters.webchat.visitors import Visitors

log = logging.getLogger("zhongtai.webchat")


class Sockets:
    def __init__(self, host: AdapterHost, visitors: Visitors, topic: str) -> None:
        self._host, self._visitors, self._topic = host, visitors, topic
        # Sockets past hello, by visitor; and every open socket, hello or not.
        self._by_visitor: dict[str, set[web.WebSocketResponse]] = {}
        self.open: set[web.WebSocketResponse] = set()
        # Set at shutdown: no new sockets, no new hellos.
        self.closing = False

    def attach(self, session: Session, visitor_id: str, most: int) -> bool:
        """Count the session among the visitor's sockets, unless they have ``most`` already."""
        local = self._by_visitor.setdefault(visitor_id, set())
        if len(local) >= most:
            return False
        local.add(session.ws)
        session.visitor_id = visitor_id
        return True

    async def detach(self, session: Session) -> None:
        visitor_id = session.visitor_id
        if visitor_id is None:
            return
        local = self._by_visitor.get(visitor_id)
        if local is None:
            return
        local.discard(session.ws)
        if local:
            return
        del self._by_visitor[visitor_id]
        try:
            await self._visitors.unmark_node(visitor_id)
            if visitor_id in self._by_visitor:
                # A new tab attached while the SREM was in flight and may have lost the race.
                await self._visitors.mark_node(visitor_id)
        except Exception:
            log.warning("webchat: could not unregister visitor socket", exc_info=True)

    async def close_all(self) -> None:
        self.closing = True
        # Stop other processes routing here before the sockets go.
        try:
            pipe = self._host.redis.pipeline(transaction=False)
            for vid in self._by_visitor:
                pipe.srem(self._visitors.nodes_key(vid), self._host.node_id)
            await pipe.execute()
        except Exception:
            log.warning("webchat: could not unregister visitors at shutdown", exc_info=True)
        await asyncio.gather(
            *(ws.close(code=CLOSE_GOING_AWAY, message=b"going away") for ws in list(self.open)),
            return_exceptions=True,
        )

    async def deliver(
        self, visitor_id: str, buf: bytes, skip: web.WebSocketResponse | None = None
    ) -> None:
        """Send a frame to every socket of the visitor (but skip), on whichever processes
        hold them. Nobody connected is fine: the host has stored the message, and welcome
        shows it when the visitor comes back."""
        try:
            nodes = await self._visitors.nodes(visitor_id)
        except (RedisError, OSError) as exc:
            detail = f"visitor lookup failed: {exc}"
            raise DeliveryError("unavailable", detail, retryable=True) from exc
        await self._fan_out(visitor_id, buf, skip)
        payload = frames.encode_node(frames.NodeDelivery(visitor_id, buf))
        remote = nodes - {self._host.node_id}
        results = await asyncio.gather(
            *(self._host.send_to_node(node, self._topic, payload) for node in remote),
            return_exceptions=True,
        )
        for node, result in zip(remote, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("webchat: delivery to node %s failed: %r", node, result)

    async def on_node_message(self, payload: bytes) -> None:
        try:
            delivery = frames.node_decoder.decode(payload)
        except msgspec.DecodeError:
            log.warning("webchat: undecodable node payload (%d bytes)", len(payload))
            return
        await self._fan_out(delivery.visitor_id, delivery.frame)

    async def _fan_out(
        self, visitor_id: str, buf: bytes, skip: web.WebSocketResponse | None = None
    ) -> None:
        targets = [ws for ws in self._by_visitor.get(visitor_id, ()) if ws is not skip]
        await asyncio.gather(*(send_raw(ws, buf) for ws in targets))
