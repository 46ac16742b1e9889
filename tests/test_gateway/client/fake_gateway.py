"""A small in-test gateway for the client library's and the terminal's tests.

It is an aiohttp websocket server on a real socket that speaks protocol v1 just enough:
hello/welcome, scripted answers to accept, reply, close and set_status, and knobs to drop,
refuse, or close connections with the protocol's close codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import WSMsgType, web

from adapters.model import Conversation, Customer, Message
from gateway.agents.protocol import (
    CLOSE_BAD_TOKEN,
    Accept,
    AgentInfo,
    Assigned,
    CannedReply,
    ClientFrame,
    Close,
    Closed,
    Error,
    Frame,
    Hello,
    Offer,
    Reply,
    ReplyAck,
    ServerFrame,
    SetStatus,
    StatusFrame,
    Welcome,
    client_decoder,
    encode,
)
from gateway.client import AgentClient, Disconnected
from router.ids import new_id

TOKEN = "alice-secret"
T = TypeVar("T")
WAIT_S = 5.0  # a deadline for what should take milliseconds
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05}


def conversation(conv_id: str | None = None, text: str = "where is my order?") -> Conversation:
    now = datetime.now(UTC)
    return Conversation(
        id=conv_id or new_id("c"),
        channel="webchat",
        account="default",
        queue="general",
        customer=Customer(id="v-42", name="Li Wei"),
        priority=5,
        state="offered",
        agent=None,
        created_at=now,
        messages=[Message(id="m-1", direction="in", text=text, sent_at=now)],
    )


class FakeGateway:
    """The server side of the agent socket, scripted."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/agent/ws", self.handle)
        self.url = ""
        self.attempts = 0  # every HTTP request, refused or not
        self.connections = 0  # sessions that got a welcome
        self.refuse = False  # answer 503 instead of upgrading
        self.protocol_ok = True
        self.unsupported_error_frame = True  # else only the close code says it
        self.broken: set[str] = set()  # conversations whose channel refuses replies
        self.ws: web.WebSocketResponse | None = None
        self.request: web.Request | None = None
        self.received: asyncio.Queue[ClientFrame] = asyncio.Queue()
        self.offers: dict[str, Conversation] = {}
        self.open: list[Conversation] = []
        self.canned: list[CannedReply] = []
        self.client_close_codes: list[int | None] = []
        self.session_ended = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        if self.refuse:
            return web.Response(status=503)
        ws = web.WebSocketResponse(heartbeat=5)
        await ws.prepare(request)
        first = await ws.receive()
        hello = client_decoder.decode(first.data) if first.type == WSMsgType.TEXT else None
        if not isinstance(hello, Hello):
            await ws.close(code=CLOSE_BAD_TOKEN, message=b"hello first")
            return ws
        self.received.put_nowait(hello)
        if hello.token != TOKEN:
            await ws.close(code=CLOSE_BAD_TOKEN, message=b"bad token")
            return ws
        if not self.protocol_ok:
            if self.unsupported_error_frame:
                await self.send(Error(code="unsupported_protocol", detail="protocol 1 only"), ws)
            await ws.close(code=4400, message=b"unsupported protocol")
            return ws
        self.ws, self.request = ws, request
        self.connections += 1
        await self.send(self.welcome(), ws)
        async for msg in ws:
            frame = client_decoder.decode(msg.data)
            self.received.put_nowait(frame)
            answer = self.answer(frame)
            if answer is not None:
                await self.send(answer, ws)
        self.client_close_codes.append(ws.close_code)
        self.session_ended.set()
        return ws

    def welcome(self) -> Welcome:
        agent = AgentInfo(
            id="alice",
            name="Alice",
            status="available",
            capacity={"webchat": 3},
            statuses=["available", "away", "offline", "lunch"],
        )
        return Welcome(agent=agent, conversations=list(self.open), canned_replies=self.canned)

    def answer(self, frame: ClientFrame) -> Frame | None:
        match frame:
            case Accept(offer_id=offer_id) if offer_id in self.offers:
                conv = self.offers.pop(offer_id)
                conv.state, conv.agent = "assigned", "alice"
                self.open.append(conv)
                return Assigned(conversation=conv)
            case Reply() if frame.conversation_id in self.broken:
                return Error(
                    code="channel_error",
                    detail="45015: reply window closed",
                    client_msg_id=frame.client_msg_id,
                    conversation_id=frame.conversation_id,
                )
            case Reply():
                return ReplyAck(client_msg_id=frame.client_msg_id, message_id="m-out-1")
            case Close():
                self.open = [c for c in self.open if c.id != frame.conversation_id]
                return Closed(conversation_id=frame.conversation_id, reason="closed by agent")
            case SetStatus():
                return StatusFrame(status=frame.status)
        return None

    async def send(self, frame: Frame, ws: web.WebSocketResponse | None = None) -> None:
        target = ws or self.ws
        assert target is not None
        await target.send_str(encode(frame).decode())

    async def offer(self, conv: Conversation, offer_id: str = "offer-1") -> None:
        self.offers[offer_id] = conv
        await self.send(Offer(offer_id=offer_id, conversation=conv, expires_in_s=30))

    async def close_current(self, code: int, message: bytes = b"") -> None:
        assert self.ws is not None
        await self.ws.close(code=code, message=message)

    async def expect(self, frame_type: type[T]) -> T:
        """The next frame the client sent of that type, skipping others."""
        async with asyncio.timeout(WAIT_S):
            while True:
                frame = await self.received.get()
                if isinstance(frame, frame_type):
                    return frame


async def within(awaitable: Awaitable[T]) -> T:
    """Await with the tests' deadline, so that a broken client fails a test, not hangs it."""
    return await asyncio.wait_for(awaitable, WAIT_S)


async def drain(client: AgentClient) -> list[ServerFrame | Disconnected]:
    return [frame async for frame in client.frames()]
