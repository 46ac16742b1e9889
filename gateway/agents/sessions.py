"""The agent sockets held by this process, and delivery of frames to any agent on any
process (locally, or through the node bus to the process holding the socket)."""

from __future__ import annotations

import logging

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from gateway.agents.protocol import CLOSE_REPLACED, Frame, encode
from gateway.config import AgentConfig
from gateway.redis.bus import NodeBus

log = logging.getLogger(__name__)


class AgentDelivery(msgspec.Struct, array_like=True):
    agent: str
    frame: bytes


class Replacement(msgspec.Struct, array_like=True):
    agent: str
    connection_id: str


class AgentSession:
    """One agent socket. Frames delivered before the welcome went out are held back, so that
    the welcome is always the first frame an agent reads."""

    def __init__(self, agent: AgentConfig, ws: web.WebSocketResponse, connection_id: str) -> None:
        self.agent = agent
        self.ws = ws
        self.connection_id = connection_id
        self._held: list[bytes] | None = []

    async def send_raw(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
            return
        await self._write(data)

    async def send(self, frame: Frame) -> None:
        await self.send_raw(encode(frame))

    async def open(self, welcome: Frame) -> None:
        """Send the welcome, then whatever arrived while it was being built."""
        await self._write(encode(welcome))
        held, self._held = self._held or [], None
        for data in held:
            await self._write(data)

    async def _write(self, data: bytes) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("agent %s socket write failed: %s", self.agent.id, exc)

    async def close(self, code: int, message: str) -> None:
        await self.ws.close(code=code, message=message.encode())


class AgentSessions:
    def __init__(self, bus: NodeBus) -> None:
        self.bus = bus
        self.local: dict[str, AgentSession] = {}
        bus.on("agent", self._on_delivery)
        bus.on("agent.replace", self._on_replacement)

    def __len__(self) -> int:
        return len(self.local)

    async def add(self, session: AgentSession) -> None:
        previous = self.local.get(session.agent.id)
        self.local[session.agent.id] = session
        if previous is not None and previous is not session:
            await previous.close(CLOSE_REPLACED, "replaced by a newer connection")

    def remove(self, session: AgentSession) -> None:
        if self.local.get(session.agent.id) is session:
            del self.local[session.agent.id]

    async def replace_remote(self, agent: str, node: str, connection_id: str) -> None:
        """Close the agent's older socket held by another process."""
        payload = msgspec.msgpack.encode(Replacement(agent, connection_id))
        await self.bus.send(node, "agent.replace", payload)

    async def deliver(self, agent: str, node: str | None, frame: Frame) -> None:
        """Send a frame to an agent wherever their socket is; a frame for an agent with no
        socket is dropped (they get the state again in their next welcome)."""
        data = encode(frame)
        session = self.local.get(agent)
        if session is not None:
            await session.send_raw(data)
        elif node and node != self.bus.node_id:
            await self.bus.send(node, "agent", msgspec.msgpack.encode(AgentDelivery(agent, data)))

    async def _on_delivery(self, payload: bytes) -> None:
        delivery = msgspec.msgpack.decode(payload, type=AgentDelivery)
        session = self.local.get(delivery.agent)
        if session is not None:
            await session.send_raw(delivery.frame)

    async def _on_replacement(self, payload: bytes) -> None:
        replacement = msgspec.msgpack.decode(payload, type=Replacement)
        session = self.local.get(replacement.agent)
        if session is not None and session.connection_id == replacement.connection_id:
            self.remove(session)
            await session.close(CLOSE_REPLACED, "replaced by a newer connection")

    async def close_all(self, message: str) -> None:
        for session in list(self.local.values()):
            await session.close(WSCloseCode.GOING_AWAY, message)
        self.local.clear()
