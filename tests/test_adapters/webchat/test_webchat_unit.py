"""The web chat adapter against the kit's in-memory host: a real aiohttp server, the
`websockets` client, and the suite's own Redis (conftest's ``redis`` and ``tenant`` fixtures).

"Nodes" are adapter instances, each with its own host and server; the hosts are peers (one
conversation store) and route ``send_to_node`` to each other the way the gateway's bus routes
between processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from helpers import wait_until
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from adapters.contract import ConversationEvent, CustomerRef, Outbound
from adapters.testing import MemoryHost
from adapters.webchat import WebChatAdapter, WebChatConfig
from adapters.webchat import frames as f

TIMEOUT = 5.0


@dataclasses.dataclass
class Node:
    adapter: WebChatAdapter
    host: MemoryHost
    server: TestServer

    @property
    def ws_url(self) -> str:
        return str(self.server.make_url("/webchat/ws")).replace("http://", "ws://", 1)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


MakeNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(redis: object, tenant: str) -> AsyncIterator[MakeNode]:
    nodes: list[Node] = []

    async def make(node_id: str = "a", **config: object) -> Node:
        if nodes:
            host = nodes[0].host.peer(node_id)
        else:
            host = MemoryHost(tenant=tenant, node_id=node_id, redis=redis)
        adapter = WebChatAdapter(msgspec.convert(config, WebChatConfig), host)
        root = web.Application()
        root.add_subapp("/webchat/", adapter.web_app())
        await adapter.start()
        server = TestServer(root, host="127.0.0.1")
        await server.start_server()
        nodes.append(node := Node(adapter, host, server))
        return node

    yield make
    for node in nodes:
        await node.adapter.aclose()
        await node.server.close()


async def recv(ws: ClientConnection) -> f.ServerFrame:
    return f.server_decoder.decode(await asyncio.wait_for(ws.recv(decode=False), TIMEOUT))


async def send(ws: ClientConnection, frame: f.Frame) -> None:
    await ws.send(f.encode(frame).decode())


async def hello(ws: ClientConnection, token: str | None = None) -> f.Welcome:
    await send(ws, f.Hello(visitor_token=token))
    welcome = await recv(ws)
    assert isinstance(welcome, f.Welcome), welcome
    return welcome


async def say(ws: ClientConnection, text: str, cmid: str | None = None) -> f.MessageFrame:
    await send(ws, f.SendMessage(text=text, client_msg_id=cmid))
    echo = await recv(ws)
    assert isinstance(echo, f.MessageFrame), echo
    return echo


def outbound(visitor_id: str, text: str = "hello from Alice") -> Outbound:
    return Outbound(
        channel="webchat",
        account="default",
        conversation_id="c1",
        customer=CustomerRef(id=visitor_id),
        message_id=uuid.uuid4().hex,
        text=text,
        agent_name="Alice",
    )


def event(visitor_id: str, kind: str, **fields: object) -> ConversationEvent:
    return ConversationEvent(
        kind=kind,  # type: ignore[arg-type]
        channel="webchat",
        account="default",
        conversation_id="c1",
        customer=CustomerRef(id=visitor_id),
        **fields,  # type: ignore[arg-type]
    )


def visitor_of(node: Node, nth: int = -1) -> str:
    """The visitor id of the nth hello the node's adapter looked up."""
    return node.host.lookups[nth].customer_id


def token_key(node: Node, token: str) -> str:
    return node.host.key("webchat", "token", hashlib.sha256(token.encode()).hexdigest())


async def test_hello_makes_a_new_visitor(make_node: MakeNode, redis) -> None:
    node = await make_node(visitor_ttl_s=7 * 86400)
    async with connect(node.ws_url) as ws:
        welcome = await hello(ws)
        assert len(welcome.visitor_token) >= 40
        assert welcome.conversation_id is None and welcome.messages == []
        visitor = visitor_of(node)
        nodes = await redis.smembers(node.host.key("webchat", "visitor", visitor, "nodes"))
        assert nodes == {b"a"}
        # Stored by hash, not in clear; short-lived until the visitor writes.
        key = token_key(node, welcome.visitor_token)
        assert await redis.get(key) == visitor.encode()
        assert 0 < await redis.ttl(key) <= 86400
        await say(ws, "now I am worth remembering")
        assert await redis.ttl(key) > 6 * 86400


async def test_hello_can_be_retried_after_a_failure(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        node.host.fail("open_conversation", ConnectionError("redis went away"))
        await send(ws, f.Hello())
        error = await recv(ws)
        assert isinstance(error, f.ErrorFrame) and error.code == "internal"
        node.host.heal("open_conversation")
        await hello(ws)
        assert node.adapter.open_connections() == 1


async def test_message_is_stored_then_echoed_with_queue_position(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await hello(ws)
        visitor = visitor_of(node)
        echo = await say(ws, "  where is my parcel?  ", cmid="m1")
        assert echo.message.direction == "in" and echo.message.text == "where is my parcel?"
        assert echo.client_msg_id == "m1" and echo.conversation_id is not None
        assert await recv(ws) == f.QueueFrame(position=1)
        [stored] = node.host.ingested
        assert (stored.channel, stored.account) == ("webchat", "default")
        assert stored.customer.id == visitor and stored.external_id == f"{visitor}:m1"
        # The same client_msg_id again (a resend after a reconnect) is one message.
        again = await say(ws, "where is my parcel?", cmid="m1")
        assert again.message.id == echo.message.id and len(node.host.ingested) == 1


async def test_resume_with_token(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        first = await hello(ws)
        echo = await say(ws, "hi")
    async with connect(node.ws_url) as ws:
        back = await hello(ws, first.visitor_token)
        assert back.visitor_token == first.visitor_token
        assert back.conversation_id == echo.conversation_id
        assert [m.id for m in back.messages] == [echo.message.id]


@pytest.mark.parametrize("token", ["no-such-token", "x" * 5000])
async def test_unknown_token_is_a_new_visitor(make_node: MakeNode, token: str) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await hello(ws)
        await say(ws, "mine")
    async with connect(node.ws_url) as ws:
        stranger = await hello(ws, token)
        assert stranger.visitor_token != token
        assert stranger.conversation_id is None and stranger.messages == []
        assert visitor_of(node, 0) != visitor_of(node, 1)


async def test_frames_before_hello_get_an_error_and_the_socket_waits(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await send(ws, f.SendMessage(text="hi"))
        error = await recv(ws)
        assert isinstance(error, f.ErrorFrame) and error.code == "hello_required"
        await hello(ws)


BAD_FRAMES = [
    ("{nope", "bad_json", None),
    ('["message"]', "bad_frame", None),
    ("{}", "bad_frame", "type"),
    ('{"type": "shout"}', "bad_frame", "type"),
    ('{"type": "message"}', "bad_frame", "text"),
    ('{"type": "message", "text": 5}', "bad_frame", "text"),
    ('{"type": "message", "text": "   "}', "invalid", "text"),
    ('{"type": "message", "text": "' + "x" * 101 + '"}', "too_long", "text"),
    ('{"type": "message", "text": "hi", "client_msg_id": ""}', "invalid", "client_msg_id"),
    ('{"type": "hello"}', "already_hello", None),
]


@pytest.mark.parametrize(("raw", "code", "field"), BAD_FRAMES)
async def test_bad_frame_gets_an_error_naming_the_field(
    make_node: MakeNode, raw: str, code: str, field: str | None
) -> None:
    node = await make_node(max_text_chars=100)
    async with connect(node.ws_url) as ws:
        await hello(ws)
        await ws.send(raw)
        error = await recv(ws)
        assert isinstance(error, f.ErrorFrame)
        assert (error.code, error.field) == (code, field), error
        await say(ws, "still here")  # the socket stays open


async def test_typing_is_accepted_silently(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await hello(ws)
        await send(ws, f.Typing())
        echo = await say(ws, "after typing")  # the next frame is the echo, not an error
        assert echo.message.text == "after typing"


async def test_oversized_frame_closes_with_1009(make_node: MakeNode) -> None:
    node = await make_node(max_frame_bytes=1024)
    async with connect(node.ws_url) as ws:
        await hello(ws)
        await send(ws, f.SendMessage(text="x" * 2000))
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_send_reaches_every_tab_and_the_echo_reaches_the_other(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as tab1, connect(node.ws_url) as tab2:
        token = (await hello(tab1)).visitor_token
        await hello(tab2, token)
        visitor = visitor_of(node)
        out = outbound(visitor)
        await node.adapter.send(out)
        assert node.adapter.open_connections() == 2
        for tab in (tab1, tab2):
            frame = await recv(tab)
            assert isinstance(frame, f.MessageFrame)
            assert frame.message.direction == "out" and frame.message.id == out.message_id
            assert (frame.message.text, frame.message.author) == (out.text, "Alice")
        echo = await say(tab1, "from tab one")
        other = await recv(tab2)
        assert isinstance(other, f.MessageFrame) and other.message.id == echo.message.id


async def test_send_to_a_visitor_with_no_socket_is_fine(make_node: MakeNode) -> None:
    node = await make_node()
    await node.adapter.send(outbound("nobody-here"))
    await node.adapter.notify(event("nobody-here", "closed", reason="resolved"))


async def test_notify_frames(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await hello(ws)
        visitor = visitor_of(node)
        await node.adapter.notify(event(visitor, "queued", position=3))
        assert await recv(ws) == f.QueueFrame(position=3)
        await node.adapter.notify(event(visitor, "agent_joined", agent_name="Alice"))
        assert await recv(ws) == f.AgentFrame(name="Alice")
        await node.adapter.notify(event(visitor, "closed", reason="resolved"))
        assert await recv(ws) == f.ClosedFrame(reason="resolved")


async def test_delivery_across_nodes(make_node: MakeNode, redis) -> None:
    a, b = await make_node("a"), await make_node("b")
    async with connect(a.ws_url) as on_a:
        token = (await hello(on_a)).visitor_token
        visitor = visitor_of(a)
        out = outbound(visitor, "sent by node b")
        await b.adapter.send(out)
        frame = await recv(on_a)
        assert isinstance(frame, f.MessageFrame) and frame.message.id == out.message_id
        # A second tab on the other node: both nodes now hold the visitor.
        async with connect(b.ws_url) as on_b:
            await hello(on_b, token)
            await a.adapter.notify(event(visitor, "agent_joined", agent_name="Bob"))
            assert await recv(on_a) == await recv(on_b) == f.AgentFrame(name="Bob")
            echo = await say(on_b, "typed on b")
            seen = await recv(on_a)
            assert isinstance(seen, f.MessageFrame) and seen.message.id == echo.message.id
        key = a.host.key("webchat", "visitor", visitor, "nodes")
        await wait_until(lambda: _members_are(redis, key, {b"a"}))
    await wait_until(lambda: _members_are(redis, key, set()))
    assert a.adapter.open_connections() == b.adapter.open_connections() == 0


async def _members_are(redis, key: str, expected: set[bytes]) -> bool:
    return await redis.smembers(key) == expected


async def test_aclose_closes_sockets_with_going_away(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as chatting, connect(node.ws_url) as silent:
        await hello(chatting)
        await wait_until(lambda: node.adapter.open_connections() == 2)
        await node.adapter.aclose()
        for ws in (chatting, silent):  # before hello or after, everyone is told
            with pytest.raises(ConnectionClosed) as closed:
                await recv(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert not await node.adapter.ready()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(node.ws_url):
            pass
    assert refused.value.response.status_code == 503


async def test_unexpected_error_is_an_internal_error_frame(make_node: MakeNode) -> None:
    node = await make_node()
    async with connect(node.ws_url) as ws:
        await hello(ws)
        node.host.fail("ingest", RuntimeError("secret stack detail"))
        await send(ws, f.SendMessage(text="hi", client_msg_id="m9"))
        error = await recv(ws)
        assert isinstance(error, f.ErrorFrame)
        assert (error.code, error.client_msg_id) == ("internal", "m9")
        assert "secret" not in error.detail
        node.host.heal("ingest")
        await say(ws, "hi", cmid="m9")


async def test_rate_limit(make_node: MakeNode) -> None:
    node = await make_node(messages_per_minute=1)
    async with connect(node.ws_url) as ws:
        await hello(ws)
        node.host.queue_position = None
        await say(ws, "one")
        await send(ws, f.SendMessage(text="two", client_msg_id="m2"))
        error = await recv(ws)
        assert isinstance(error, f.ErrorFrame)
        assert (error.code, error.client_msg_id) == ("rate_limited", "m2")
        assert len(node.host.ingested) == 1
        assert node.host.limits_hit == ["webchat.messages_per_minute"]


async def test_hello_timeout_closes_with_4408(make_node: MakeNode) -> None:
    node = await make_node(hello_timeout_s=0.2)
    async with connect(node.ws_url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert node.host.limits_hit == ["webchat.hello_timeout_s"]


async def test_too_many_tabs_are_refused(make_node: MakeNode) -> None:
    node = await make_node(max_sockets_per_visitor=1)
    async with connect(node.ws_url) as tab1, connect(node.ws_url) as tab2:
        token = (await hello(tab1)).visitor_token
        await send(tab2, f.Hello(visitor_token=token))
        error = await recv(tab2)
        assert isinstance(error, f.ErrorFrame) and error.code == "too_many_connections"
        with pytest.raises(ConnectionClosed) as closed:
            await recv(tab2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert node.host.limits_hit == ["webchat.max_sockets_per_visitor"]
        await say(tab1, "the first tab still works")


async def test_allowed_origins(make_node: MakeNode) -> None:
    node = await make_node(allowed_origins=["https://shop.example.com"])
    with pytest.raises(InvalidStatus) as refused:
        async with connect(node.ws_url, origin=Origin("https://evil.example.com")):
            pass
    assert refused.value.response.status_code == 403
    own = "http://" + node.ws_url.split("/")[2]  # the gateway's own page
    # Listed, the gateway's own, or no Origin at all (not a browser).
    for origin in ("https://shop.example.com", own, None):
        async with connect(node.ws_url, origin=Origin(origin) if origin else None) as ws:
            await hello(ws)


async def test_page_and_widget_are_served(make_node: MakeNode) -> None:
    node = await make_node()
    async with aiohttp.ClientSession() as http:
        async with http.get(node.url("/webchat/")) as page:
            assert page.status == 200 and "static/chat.js" in await page.text()
            assert "Content-Security-Policy" in page.headers
        for name in ("chat.js", "chat.css"):
            async with http.get(node.url(f"/webchat/static/{name}")) as res:
                assert res.status == 200


def test_config_is_strict_and_checked() -> None:
    assert msgspec.convert({}, WebChatConfig) == WebChatConfig()
    with pytest.raises(msgspec.ValidationError, match="unknown field `colour`"):
        msgspec.convert({"colour": "red"}, WebChatConfig)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.max_frame_bytes"):
        msgspec.convert({"max_frame_bytes": 10}, WebChatConfig)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.allowed_origins\[0\]"):
        msgspec.convert({"allowed_origins": ["shop.example.com"]}, WebChatConfig)
