"""The agent sockets held by this process, and delivery of frames to any agent on any
process (locally, or through the node bus to the process holding the socket).

The node bus loses whatever was published while its subscription was down, and frames from
two processes may pass each other on the way. So a session keeps to what the agent's client
knows: a ``message`` for a conversation it was never told of is not sent but makes the
session resync, and so does the bus coming back after a loss. A resync is a fresh
``welcome`` read from Redis, which the client takes in place of what it had; the session
remembers which messages of each conversation its client holds, so that the fresh welcome can
reach back past ``recent_messages`` to the first one the client missed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from adapters.loops import Outage
from adapters.model import Conversation
from gateway.agents.protocol import (
    CLOSE_REPLACED,
    Assigned,
    Closed,
    Frame,
    MessageFrame,
    Offer,
    Welcome,
    encode,
)
from gateway.config import AgentConfig
from gateway.redis.bus import NodeBus

log = logging.getLogger(__name__)


class Tracked(msgspec.Struct, array_like=True, frozen=True):
    """What a session checks a frame against: its kind ("" for frames it need not check),
    and the conversation and message it is about."""

    kind: str = ""
    conversation_id: str = ""
    message_id: str = ""


UNTRACKED = Tracked()


def tracked(frame: Frame) -> Tracked:
    match frame:
        case MessageFrame():
            return Tracked("message", frame.conversation_id, frame.message.id)
        case Assigned():
            messages = frame.conversation.messages
            return Tracked("assigned", frame.conversation.id, messages[-1].id if messages else "")
        case Closed():
            return Tracked("closed", frame.conversation_id)
    return UNTRACKED


class Holding(msgspec.Struct):
    """What the client holds of one conversation: ``since``, the oldest message it was
    shown (those before it do not count as missed), and the ids of the messages it has. For
    a conversation it was never told of, ``since_ms`` instead: messages stored before then
    (its assignment) were the offer's context, not frames it missed."""

    since: str
    ids: set[str]
    since_ms: int | None = None


def holding_of(conversation: Conversation) -> Holding:
    ids = {m.id for m in conversation.messages}
    return Holding(conversation.messages[0].id if conversation.messages else "", ids)


class AgentDelivery(msgspec.Struct, array_like=True):
    agent: str
    frame: bytes
    about: Tracked = UNTRACKED  # from an older process: none, and the frame goes unchecked


class Replacement(msgspec.Struct, array_like=True):
    agent: str
    connection_id: str


# A session's welcome, and the offers that follow it, as Redis has them now.
Welcomer = Callable[["AgentSession"], Awaitable[tuple[Welcome, list[Offer]]]]


class AgentSession:
    """One agent socket. Frames delivered before the welcome went out (or while a fresh one
    is read) are held back, so that a welcome is always followed by what came after it."""

    def __init__(self, agent: AgentConfig, ws: web.WebSocketResponse, connection_id: str) -> None:
        self.agent = agent
        self.ws = ws
        self.connection_id = connection_id
        self.opened = asyncio.Event()
        self.stale = False  # wants a fresh welcome
        self.on_stale: Callable[[AgentSession], None] | None = None
        self._held: list[tuple[bytes, Tracked]] | None = []
        self.holdings: dict[str, Holding] = {}  # the conversations the client was told of

    async def send_raw(self, data: bytes, about: Tracked = UNTRACKED) -> None:
        if self._held is not None:
            self._held.append((data, about))
            return
        await self._pass(data, about, frozenset())

    async def send(self, frame: Frame) -> None:
        await self.send_raw(encode(frame), tracked(frame))

    def hold(self) -> None:
        """Keep frames back until the next ``open``."""
        if self._held is None:
            self._held = []

    async def open(self, welcome: Welcome, offers: Sequence[Offer] = ()) -> None:
        """Send the welcome and its offers, then whatever arrived while it was being built
        (less the messages it already holds)."""
        self.holdings = {c.id: holding_of(c) for c in welcome.conversations}
        shown = frozenset(m.id for c in welcome.conversations for m in c.messages)
        await self._write(encode(welcome))
        for offer in offers:
            await self._write(encode(offer))
        held, self._held = self._held or [], None
        for data, about in held:
            await self._pass(data, about, shown)
        self.opened.set()
        if self.stale:  # the bus came back while the handshake read its welcome
            self._want_resync()

    async def release(self) -> None:
        """Send the held frames without a welcome (reading one failed)."""
        held, self._held = self._held or [], None
        for data, about in held:
            await self._pass(data, about, frozenset())

    async def _pass(self, data: bytes, about: Tracked, shown: frozenset[str]) -> None:
        if about.kind == "message":
            holding = self.holdings.get(about.conversation_id)
            if holding is None:
                # Its assigned has not come (or went missing): the conversation comes whole
                # in a fresh welcome, read after this message was stored.
                self._want_resync()
                return
            if about.message_id in shown:
                return
            holding.ids.add(about.message_id)
        elif about.kind == "assigned":
            # The assigned frame brings the recent messages: the last of them is where the
            # client's knowledge of the conversation begins to count.
            last = about.message_id
            self.holdings[about.conversation_id] = Holding(last, {last} if last else set())
        elif about.kind == "closed":
            self.holdings.pop(about.conversation_id, None)
        await self._write(data)

    def _want_resync(self) -> None:
        self.stale = True
        if self.on_stale is not None:
            self.on_stale(self)

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
        self.welcomer: Welcomer | None = None
        self._resyncs: asyncio.Task[None] | None = None
        self._outage = Outage(log, "resyncing agent sockets")
        bus.on("agent", self._on_delivery)
        bus.on("agent.replace", self._on_replacement)
        bus.on_resubscribed(self.resync_all)

    def __len__(self) -> int:
        return len(self.local)

    async def add(self, session: AgentSession) -> None:
        previous = self.local.get(session.agent.id)
        self.local[session.agent.id] = session
        session.on_stale = self.resync
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
        data, about = encode(frame), tracked(frame)
        session = self.local.get(agent)
        if session is not None:
            await session.send_raw(data, about)
        elif node and node != self.bus.node_id:
            delivery = AgentDelivery(agent, data, about)
            await self.bus.send(node, "agent", msgspec.msgpack.encode(delivery))

    async def _on_delivery(self, payload: bytes) -> None:
        delivery = msgspec.msgpack.decode(payload, type=AgentDelivery)
        session = self.local.get(delivery.agent)
        if session is not None:
            await session.send_raw(delivery.frame, delivery.about)

    async def _on_replacement(self, payload: bytes) -> None:
        replacement = msgspec.msgpack.decode(payload, type=Replacement)
        session = self.local.get(replacement.agent)
        if session is not None and session.connection_id == replacement.connection_id:
            self.remove(session)
            await session.close(CLOSE_REPLACED, "replaced by a newer connection")

    # Resyncs: one task for all sessions, so that a Redis still loading is asked by one loop
    # with one backoff, not by every socket at once.

    def resync_all(self) -> None:
        """Every local socket gets a fresh welcome (the bus lost what was sent meanwhile)."""
        for session in list(self.local.values()):
            session.stale = True
        self._start_resyncs()

    def resync(self, session: AgentSession) -> None:
        session.stale = True
        self._start_resyncs()

    def _start_resyncs(self) -> None:
        if self.welcomer is not None and (self._resyncs is None or self._resyncs.done()):
            self._resyncs = asyncio.create_task(self._run_resyncs(), name="agent-resyncs")

    async def _run_resyncs(self) -> None:
        # A session still in its handshake is left to it: its open() asks again.
        while stale := [s for s in self.local.values() if s.stale and s.opened.is_set()]:
            for session in stale:
                if self._current(session):
                    await self._resync_one(session)
                else:
                    session.stale = False

    def _current(self, session: AgentSession) -> bool:
        return self.local.get(session.agent.id) is session and not session.ws.closed

    async def _resync_one(self, session: AgentSession) -> None:
        assert self.welcomer is not None
        while True:
            session.stale = False
            session.hold()
            try:
                welcome, offers = await self.welcomer(session)
            except Exception as exc:
                # Redis still loading or away: said once, tried again with backoff; the
                # frames held meanwhile (answers to the agent's own frames) go out now.
                await session.release()
                await asyncio.sleep(self._outage.failed(exc))
                if not self._current(session):
                    return
                continue
            self._outage.succeeded()
            await session.open(welcome, offers)
            log.info("agent %s resynced (%s)", session.agent.id, session.connection_id)
            return

    async def close_all(self, message: str) -> None:
        if self._resyncs is not None:
            self._resyncs.cancel()
        for session in list(self.local.values()):
            await session.close(WSCloseCode.GOING_AWAY, message)
        self.local.clear()
