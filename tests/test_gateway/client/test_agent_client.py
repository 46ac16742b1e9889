"""The agent client library and the terminal client, against a small in-test gateway.

The gateway here is an aiohttp websocket server on a real socket that speaks protocol v1
just enough: hello/welcome, scripted answers to accept, reply, close and set_status, and
knobs to drop, refuse, or close connections with the protocol's close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from adapters.model import Conversation, Customer, Message
from gateway.agents.protocol import (
    CLOSE_BAD_TOKEN,
    CLOSE_REPLACED,
    Accept,
    AgentInfo,
    Assigned,
    ClientFrame,
    Close,
    Closed,
    Decline,
    Error,
    Frame,
    Hello,
    MessageFrame,
    Offer,
    Reply,
    ReplyAck,
    ServerFrame,
    SetStatus,
    StatusFrame,
    Transfer,
    Welcome,
    client_decoder,
    encode,
)
from gateway.client.connection import (
    AgentClient,
    AuthenticationFailed,
    ConnectionLost,
    Disconnected,
    NotConnected,
    ProtocolMismatch,
    Replaced,
)
from gateway.client.terminal import READER_THREAD_NAME, matching, run_terminal, short_id
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
        return Welcome(agent=agent, conversations=list(self.open))

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


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway()
    server = TestServer(gw.app, host="127.0.0.1", port=0)
    await server.start_server()
    gw.url = str(server.make_url("/agent/ws")).replace("http://", "ws://", 1)
    yield gw
    await server.close()


async def within(awaitable: Awaitable[T]) -> T:
    """Await with the tests' deadline, so that a broken client fails a test, not hangs it."""
    return await asyncio.wait_for(awaitable, WAIT_S)


async def drain(client: AgentClient) -> list[ServerFrame | Disconnected]:
    return [frame async for frame in client.frames()]


# The library.


async def test_hello_is_the_first_frame_and_welcome_comes_back(gateway: FakeGateway) -> None:
    gateway.open = [conversation("c-open")]
    async with AgentClient(gateway.url, TOKEN) as client:
        hello = await gateway.expect(Hello)
        assert (hello.token, hello.protocol) == (TOKEN, 1)
        assert client.connected
        assert client.welcome is not None and client.welcome.agent.id == "alice"
        first = await within(anext(client.frames()))
        assert isinstance(first, Welcome)
        assert [c.id for c in first.conversations] == ["c-open"]


async def test_server_frames_are_decoded(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN) as client:
        await gateway.offer(conversation("c-1"))
        now = datetime.now(UTC)
        await gateway.send(
            MessageFrame(
                conversation_id="c-1",
                message=Message(id="m-2", direction="in", text="hello?", sent_at=now),
            )
        )
        offer = await client.wait_for(Offer)
        assert offer.offer_id == "offer-1"
        assert offer.conversation.customer.name == "Li Wei"
        assert offer.conversation.messages[0].sent_at.tzinfo is not None
        message = await client.wait_for(MessageFrame)
        assert (message.message.text, message.message.sent_at) == ("hello?", now)


async def test_methods_send_the_protocol_frames(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN) as client:
        await client.accept("o-1")
        assert await gateway.expect(Accept) == Accept(offer_id="o-1")
        await client.decline("o-2", "busy")
        assert await gateway.expect(Decline) == Decline(offer_id="o-2", reason="busy")
        generated = await client.reply("c-1", "hi")
        sent = await gateway.expect(Reply)
        assert (sent.conversation_id, sent.text, sent.client_msg_id) == ("c-1", "hi", generated)
        ack = await client.wait_for(ReplyAck, lambda a: a.client_msg_id == generated)
        assert ack.message_id == "m-out-1"
        assert await client.reply("c-1", "again", client_msg_id="mine") == "mine"
        assert (await gateway.expect(Reply)).client_msg_id == "mine"
        await client.set_status("away")
        assert await gateway.expect(SetStatus) == SetStatus(status="away")
        await client.transfer("c-1", to_queue="billing", note="refund")
        assert await gateway.expect(Transfer) == Transfer(
            conversation_id="c-1", to_queue="billing", note="refund"
        )
        await client.close("c-1")
        assert await gateway.expect(Close) == Close(conversation_id="c-1")
        assert (await client.wait_for(Closed)).conversation_id == "c-1"


async def test_wait_for_times_out(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN) as client:
        with pytest.raises(TimeoutError):
            await client.wait_for(Offer, timeout=0.05)


@pytest.mark.parametrize("how", ["going_away", "abort"])
async def test_reconnects_after_a_drop_and_yields_a_new_welcome(
    gateway: FakeGateway, how: str
) -> None:
    async with AgentClient(gateway.url, TOKEN, **FAST) as client:
        frames = client.frames()
        assert isinstance(await within(anext(frames)), Welcome)
        if how == "abort":
            assert gateway.request is not None and gateway.request.transport is not None
            gateway.request.transport.abort()  # no close frame: a network drop
        else:
            await gateway.close_current(1001, b"going away")
        lost = await within(anext(frames))
        assert isinstance(lost, Disconnected)
        assert lost.code == (1006 if how == "abort" else 1001)
        assert isinstance(await within(anext(frames)), Welcome)
        assert gateway.connections == 2
        assert [type(await gateway.expect(Hello)) for _ in range(2)] == [Hello, Hello]
        await client.reply("c-1", "after the reconnect")
        assert (await gateway.expect(Reply)).text == "after the reconnect"


async def test_bad_token_fails_at_once_without_reconnecting(gateway: FakeGateway) -> None:
    client = AgentClient(gateway.url, "wrong", **FAST)
    with pytest.raises(AuthenticationFailed, match="bad token"):
        await client.connect()
    assert gateway.attempts == 1
    with pytest.raises(AuthenticationFailed):
        await within(anext(client.frames()))
    await client.aclose()


async def test_token_refused_mid_session_ends_the_client(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN, **FAST) as client:
        await gateway.close_current(CLOSE_BAD_TOKEN, b"token revoked")
        with pytest.raises(AuthenticationFailed, match="token revoked"):
            await within(drain(client))
        # frames() raised only after the connection loop ended: no attempt can follow.
        assert gateway.attempts == 1
        assert not client.connected


async def test_replaced_connection_is_not_resumed(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN, **FAST) as client:
        await gateway.close_current(CLOSE_REPLACED, b"replaced")
        with pytest.raises(Replaced):
            await client.wait_for(Offer)
        assert gateway.attempts == 1
        with pytest.raises(NotConnected):
            await client.reply("c-1", "too late")


async def test_sending_while_down_raises_not_connected(gateway: FakeGateway) -> None:
    client = AgentClient(gateway.url, TOKEN, **FAST)
    with pytest.raises(NotConnected):
        await client.accept("o-1")  # not connected yet
    async with client:
        gateway.refuse = True
        await gateway.close_current(1011)
        await client.wait_for(Disconnected)
        await client.wait_for(Disconnected, lambda d: d.code is None)  # a refused retry
        assert not client.connected
        with pytest.raises(NotConnected):
            await client.reply("c-1", "lost?")
        gateway.refuse = False
        await client.wait_for(Welcome)
        await client.reply("c-1", "back")
    replies = []
    while not gateway.received.empty():
        frame = gateway.received.get_nowait()
        if isinstance(frame, Reply):
            replies.append(frame.text)
    assert replies == ["back"]  # the reply made while down was not queued


async def test_no_reconnect_when_disabled(gateway: FakeGateway) -> None:
    async with AgentClient(gateway.url, TOKEN, reconnect=False) as client:
        await gateway.close_current(1001)
        with pytest.raises(ConnectionLost) as info:
            await within(drain(client))
        assert info.value.code == 1001
        assert gateway.attempts == 1


async def test_aclose_closes_normally_and_ends_frames(gateway: FakeGateway) -> None:
    client = AgentClient(gateway.url, TOKEN, **FAST)
    await client.connect()
    await client.aclose()
    assert await within(drain(client)) == [client.welcome]
    await asyncio.wait_for(gateway.session_ended.wait(), WAIT_S)
    assert gateway.client_close_codes == [1000]
    assert gateway.attempts == 1


async def test_first_connection_failure_raises(gateway: FakeGateway) -> None:
    gateway.refuse = True
    with pytest.raises(ConnectionLost, match="HTTP 503"):
        await AgentClient(gateway.url, TOKEN, **FAST).connect()
    assert gateway.attempts == 1


@pytest.mark.parametrize("error_frame", [True, False])
async def test_unsupported_protocol_is_fatal(gateway: FakeGateway, error_frame: bool) -> None:
    gateway.protocol_ok = False
    gateway.unsupported_error_frame = error_frame
    with pytest.raises(ProtocolMismatch, match="protocol 1 only" if error_frame else "unsupp"):
        await AgentClient(gateway.url, TOKEN, **FAST).connect()
    assert gateway.attempts == 1


# The terminal client.


class Screen:
    """A stdout that tests can wait on."""

    def __init__(self) -> None:
        self.text = ""
        self.changed = asyncio.Event()

    def write(self, text: str) -> int:
        self.text += text
        self.changed.set()
        return len(text)

    def flush(self) -> None:
        pass

    async def wait_for(self, needle: str) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while needle not in self.text:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            pytest.fail(f"{needle!r} not on the screen:\n{self.text}")


class Keyboard:
    """The write end of a pipe that the terminal client reads as its stdin."""

    def __init__(self) -> None:
        read_fd, self.fd = os.pipe()
        self.stdin: IO[bytes] = os.fdopen(read_fd, "rb", buffering=0)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@pytest.fixture
def keyboard() -> Iterator[Keyboard]:
    kb = Keyboard()
    yield kb
    kb.close()  # end of input lets the reader thread finish before its fd is closed
    for thread in threading.enumerate():
        if thread.name == READER_THREAD_NAME:
            thread.join(5)
    kb.stdin.close()


@contextlib.asynccontextmanager
async def terminal(
    gateway: FakeGateway, keyboard: Keyboard, token: str = TOKEN
) -> AsyncIterator[tuple[Screen, asyncio.Task[int]]]:
    """run_terminal in a task, cancelled at the end if the test left it running."""
    screen = Screen()
    stdout: Any = screen
    run = asyncio.create_task(run_terminal(gateway.url, token, stdin=keyboard.stdin, stdout=stdout))
    try:
        yield screen, run
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run


async def test_terminal_accepts_an_offer_and_replies(
    gateway: FakeGateway, keyboard: Keyboard
) -> None:
    async with terminal(gateway, keyboard) as (screen, run):
        await accept_and_reply(gateway, keyboard, screen)
        keyboard.type("q")
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def accept_and_reply(gateway: FakeGateway, keyboard: Keyboard, screen: Screen) -> None:
    await screen.wait_for("connected as Alice (alice)")
    conv = conversation()
    short = conv.id[-4:]
    await gateway.offer(conv)
    await screen.wait_for(f"OFFER {short}  webchat  Li Wei (v-42)")
    await screen.wait_for("where is my order?")

    keyboard.type("a")
    assert await gateway.expect(Accept) == Accept(offer_id="offer-1")
    await screen.wait_for(f"ASSIGNED {short}")

    keyboard.type("r It left the warehouse today.")
    reply = await gateway.expect(Reply)
    assert (reply.conversation_id, reply.text) == (conv.id, "It left the warehouse today.")
    await screen.wait_for(f"[{short}] sent: It left the warehouse today.")

    await gateway.send(
        MessageFrame(
            conversation_id=conv.id,
            message=Message(id="m-3", direction="in", text="thanks!", sent_at=datetime.now(UTC)),
        )
    )
    await screen.wait_for(f"[{short}] Li Wei: thanks!")

    keyboard.type(f"reply {conv.id[-6:]} you're welcome")
    assert (await gateway.expect(Reply)).text == "you're welcome"
    keyboard.type("reply face the facts")  # no conversation named: the line is the text
    reply = await gateway.expect(Reply)
    assert (reply.conversation_id, reply.text) == (conv.id, "face the facts")

    keyboard.type("frobnicate")
    await screen.wait_for("unknown command 'frobnicate'")
    keyboard.type("c")
    assert await gateway.expect(Close) == Close(conversation_id=conv.id)
    await screen.wait_for(f"[{short}] closed: closed by agent")


async def test_terminal_shows_errors_on_one_line(gateway: FakeGateway, keyboard: Keyboard) -> None:
    conv = conversation()
    gateway.open, gateway.broken = [conv], {conv.id}
    async with terminal(gateway, keyboard) as (screen, run):
        await screen.wait_for("1 open conversation(s)")
        keyboard.type(f"use {conv.id[-4:]}")
        keyboard.type("r too late now")
        await screen.wait_for(
            f"error [{conv.id[-4:]}] not sent: too late now; "
            "channel_error: 45015: reply window closed\n"
        )
        keyboard.close()  # end of input quits
        assert await asyncio.wait_for(run, WAIT_S) == 0


async def test_terminal_exits_2_on_a_bad_token(gateway: FakeGateway, keyboard: Keyboard) -> None:
    async with terminal(gateway, keyboard, "wrong") as (screen, run):
        assert await asyncio.wait_for(run, WAIT_S) == 2
        assert "refused the token" in screen.text


# Ids for typing.


def test_short_ids_are_unique_tails() -> None:
    assert short_id("c018b0a1e2f3", ["c018b0a1e2f3", "c018b0a1ffff"]) == "e2f3"
    assert short_id("c0abc1234", ["c0abc1234", "c0fff1234"]) == "c1234"
    assert short_id("c0abc1234", ["c0abc1234", "c01234fff"]) == "c1234"  # not inside either
    assert short_id("c1", ["c2"]) == "c1"


def test_matching_prefers_an_exact_id() -> None:
    assert matching("c1", ["c1", "c10"]) == ["c1"]
    assert matching("c1", ["c10", "c11"]) == ["c10", "c11"]
    assert matching("1234", ["c0abc1234", "c0ffff999"]) == ["c0abc1234"]
    assert matching("x", ["c10"]) == []
