"""The agent client library against a scripted gateway (fake_gateway.py): the frames it
sends and decodes, its reconnects, and the closes after which it stops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from fake_gateway import FAST, TOKEN, WAIT_S, FakeGateway, conversation, drain, within

from gateway.agents.protocol import CLOSE_BAD_TOKEN, CLOSE_REPLACED
from gateway.client import (
    Accept,
    AgentClient,
    AuthenticationFailed,
    Close,
    Closed,
    ConnectionLost,
    Decline,
    Disconnected,
    Hello,
    Message,
    MessageFrame,
    NotConnected,
    Offer,
    ProtocolMismatch,
    Replaced,
    Reply,
    ReplyAck,
    SetStatus,
    Transfer,
    Welcome,
)


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


async def test_a_second_welcome_on_the_same_connection_replaces_the_state(
    gateway: FakeGateway,
) -> None:
    gateway.open = [conversation("c-old")]
    async with AgentClient(gateway.url, TOKEN) as client:
        frames = client.frames()
        assert isinstance(await within(anext(frames)), Welcome)
        gateway.open = [conversation("c-new")]
        await gateway.send(gateway.welcome())  # the gateway resyncing this socket
        again = await within(anext(frames))
        assert isinstance(again, Welcome)
        assert client.welcome is again
        assert [c.id for c in client.welcome.conversations] == ["c-new"]
        assert gateway.connections == 1
