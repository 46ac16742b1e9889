"""Lite agents: thousands of agent sockets online with a few hundred bytes of state each.

A ``websockets`` connection keeps a task, queues and buffers per socket, which is fine for 20
agents and too heavy for 10,000 in one generator next to the gateway on a small machine. A
lite agent is one ``asyncio.Protocol``: a hand-written client handshake, a parser for the
unmasked, unfragmented frames a server sends, pongs to the gateway's pings, and the same
answers as every other agent (``load_agents.answer``). Its frames are masked with the zero key:
the protocol requires the mask bit, a server cannot tell the key's randomness, and XOR with
zero costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

from load_agents import AgentStats, answer
from load_wire import READY_TIMEOUT_S, agent_decoder, encode, now

CONNECT_CONCURRENCY = 64
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
ZERO_MASK = b"\x00\x00\x00\x00"


class LiteAgent(asyncio.Protocol):
    """One agent socket: welcomed once, then answers offers like every bench agent."""

    __slots__ = ("buf", "done", "request", "stats", "token", "transport", "upgraded", "welcomed")

    def __init__(self, url: str, token: str, stats: AgentStats) -> None:
        parts = urlsplit(url)
        self.token, self.stats = token, stats
        self.request = (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.welcomed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.done = False  # closed by us: its end is not an error

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have the same methods.
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            if b" 101 " not in status:
                self._fail(f"agent upgrade refused: {status.decode(errors='replace')}")
                return
            del self.buf[: end + 4]
            self.upgraded = True
            self.send(TEXT, encode({"type": "hello", "token": self.token, "protocol": 1}))
        self._frames(now())

    def _frames(self, at: float) -> None:
        buf, pos = self.buf, 0
        while len(buf) - pos >= 2:
            opcode, size, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if size == 126:
                if len(buf) - pos < 4:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif size == 127:
                if len(buf) - pos < 10:
                    break
                size, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if len(buf) - pos < head + size:
                break
            payload = bytes(buf[pos + head : pos + head + size])
            pos += head + size
            self._frame(opcode, payload, at)
        del buf[:pos]

    def _frame(self, opcode: int, payload: bytes, at: float) -> None:
        if opcode == PING:
            self.send(PONG, payload)
        elif opcode == CLOSE:
            if not self.welcomed.done():
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self._fail(f"agent socket closed by the gateway: {code} {payload[2:]!r}")
            self.send(CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()
        elif opcode == TEXT:
            frame = agent_decoder.decode(payload)
            if not self.welcomed.done():
                if frame.type == "welcome":
                    self.welcomed.set_result(None)
                else:
                    self._fail(f"agent hello refused: {frame.code} {frame.detail}")
                return
            reply = answer(frame, at, self.stats)
            if reply is not None:
                self.send(TEXT, reply)

    def send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            head = bytes((0x80 | opcode, 0x80 | size))
        elif size < 65536:
            head = bytes((0x80 | opcode, 0xFE)) + size.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0xFF)) + size.to_bytes(8, "big")
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(head + ZERO_MASK + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.welcomed.done():
            self._fail(f"agent socket closed before the welcome: {exc!r}")
        elif not self.done:
            self.stats.error(f"agent socket ended: {exc!r}")

    def _fail(self, why: str) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(RuntimeError(why))
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.close()


@contextlib.asynccontextmanager
async def lite_agents_running(
    urls: Sequence[str], tokens: Sequence[str], stats: AgentStats
) -> AsyncIterator[None]:
    """Every agent connected (agent i to ``urls[i % len(urls)]``) and welcomed for the life
    of the block; a connection or a hello that fails ends the run with its error."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    agents: list[LiteAgent] = []

    async def one(url: str, token: str) -> None:
        parts = urlsplit(url)
        agent = LiteAgent(url, token, stats)
        agents.append(agent)
        async with gate:
            await loop.create_connection(lambda: agent, parts.hostname, parts.port)
            await agent.welcomed

    try:
        # A large centre takes a while to sign in on a busy machine: allow for it.
        await asyncio.wait_for(
            asyncio.gather(*(one(urls[i % len(urls)], t) for i, t in enumerate(tokens))),
            READY_TIMEOUT_S + len(tokens) / 50,
        )
        yield
    finally:
        for agent in agents:
            agent.close()
