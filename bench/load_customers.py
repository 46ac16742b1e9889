"""The customers: a pool of visitor sockets, and the Poisson arrivals that make them write.

The pool is connected and greeted before the clock starts: connecting hundreds of sockets a
second would measure TCP and HTTP-upgrade handshakes, not routing, and a real widget connects
once and then writes. A visitor is reused only after its conversation was closed; an arrival
that finds none free is counted as starved.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
from collections.abc import Sequence

import websockets
from load_wire import MARKER_PREFIX, CustomerFrame, ErrorLog, connect, customer_decoder, encode, now
from websockets.asyncio.client import ClientConnection

CONNECT_CONCURRENCY = 64


@dataclasses.dataclass
class Conversation:
    scheduled: float
    sent: float
    echo: float | None = None
    closed: float | None = None


@dataclasses.dataclass(eq=False)
class Visitor:
    ws: ClientConnection
    marker: str | None = None  # the conversation in flight, None when free


class Customers(ErrorLog):
    """The visitor pool and every conversation it started."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.visitors: list[Visitor] = []
        self.free: collections.deque[Visitor] = collections.deque()
        self.busy = 0
        self.idle = asyncio.Event()  # set while no conversation is in flight
        self.idle.set()
        self.freed = asyncio.Event()  # set when a visitor comes free (closed-loop runs clear it)
        self.conversations: dict[str, Conversation] = {}
        self.starved = 0  # arrivals skipped because every visitor was in a conversation
        self._seq = 0
        self._readers: list[asyncio.Task[None]] = []

    async def connect(self, urls: Sequence[str], count: int, deflate: bool) -> None:
        """``count`` visitors, visitor i on ``urls[i % len(urls)]``."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)  # a burst of handshakes, not a stampede

        async def one(url: str) -> None:
            async with gate:
                ws = await connect(url, deflate)
                await ws.send(b'{"type":"hello"}', text=True)
                welcome = customer_decoder.decode(await ws.recv(decode=False))
                if welcome.type != "welcome":
                    raise RuntimeError(f"visitor hello refused: {welcome.code} {welcome.detail}")
            visitor = Visitor(ws)
            self.visitors.append(visitor)
            self.free.append(visitor)
            self._readers.append(asyncio.create_task(self._read(visitor)))

        await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(count)))

    async def start(self, scheduled: float) -> str | None:
        """One arrival: a free visitor writes a message that opens a new conversation; its
        marker, or None when every visitor was busy (starved)."""
        if not self.free:
            self.starved += 1
            return None
        visitor = self.free.popleft()
        self.busy += 1
        self.idle.clear()
        self._seq += 1
        marker = f"{MARKER_PREFIX}{self.run_id}-{self._seq}"
        visitor.marker = marker
        data = encode({"type": "message", "text": f"order late? {marker}", "client_msg_id": marker})
        self.conversations[marker] = Conversation(scheduled=scheduled, sent=now())
        await visitor.ws.send(data, text=True)
        return marker

    async def _read(self, visitor: Visitor) -> None:
        try:
            while True:
                raw = await visitor.ws.recv(decode=False)
                self._on_frame(visitor, customer_decoder.decode(raw), now())
        except websockets.ConnectionClosed as exc:
            self.error(f"visitor socket closed: {exc}")

    def _on_frame(self, visitor: Visitor, frame: CustomerFrame, at: float) -> None:
        marker = visitor.marker
        conversation = self.conversations.get(marker) if marker else None
        if frame.type == "message" and frame.client_msg_id is not None:
            echoed = self.conversations.get(frame.client_msg_id)
            if echoed is not None and echoed.echo is None:
                echoed.echo = at
        elif frame.type == "closed":
            if conversation is None:
                self.error("closed without a conversation in flight")
                return
            conversation.closed = at
            visitor.marker = None
            self.busy -= 1
            if not self.busy:
                self.idle.set()
            self.free.append(visitor)  # reused only now: its next message opens a new one
            self.freed.set()
        elif frame.type == "error":
            self.error(f"visitor error: {frame.code} {frame.detail}")

    async def aclose(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await asyncio.gather(*(v.ws.close() for v in self.visitors), return_exceptions=True)


async def arrivals(
    customers: Customers, rate: float, start: float, end: float, rng: random.Random
) -> None:
    """Poisson arrivals: exponential gaps; when the loop falls behind it catches up at once,
    so that the offered rate stays the asked rate (the lateness is reported)."""
    due = start
    while True:
        due += rng.expovariate(rate)
        if due >= end:
            return
        delay = due - now()
        if delay > 0:
            await asyncio.sleep(delay)
        await customers.start(due)


async def drain(customers: Customers, seconds: float) -> None:
    """Wait for the conversations in flight to close, for at most ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(customers.idle.wait(), seconds)
