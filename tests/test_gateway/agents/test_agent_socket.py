"""The agent socket's handling of bad input and of a second connection of the same agent."""

from __future__ import annotations

import pytest
from harness import agent, agent_client, connect, customer, make_config, running


@pytest.fixture
def config(tenant: str):
    return make_config(tenant, agents=[agent("alice")], server={"max_frame_bytes": 4096})


async def test_malformed_frames_get_an_error_naming_the_field_and_the_socket_stays(
    config, redis_url
):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        await alice.send(type="accept")
        error = await alice.expect("error")
        assert error["code"] == "bad_frame" and error["field"] == "offer_id"
        await alice.send(type="accept", offer_id=42)
        assert (await alice.expect("error"))["field"] == "offer_id"
        await alice.send(type="dance")
        assert (await alice.expect("error"))["field"] == "type"
        await alice.ws.send("{not json")
        assert (await alice.expect("error"))["code"] == "bad_frame"
        await alice.send(type="reply", conversation_id="nope", text="x", client_msg_id="1")
        error = await alice.expect("error")
        assert error["code"] == "not_yours" and error["client_msg_id"] == "1"
        await alice.send(type="set_status", status="away")
        assert (await alice.expect("status"))["status"] == "away"


async def test_oversized_frame_closes_with_1009_and_loses_nothing_accepted(config, redis_url):
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        async with agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="please keep this")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            conversation = (await alice.expect("assigned"))["conversation"]["id"]
            await alice.send(
                type="reply", conversation_id=conversation, text="hi", client_msg_id="1"
            )
            await alice.expect("reply_ack", client_msg_id="1")
            too_big = "x" * 10_000
            await alice.send(
                type="reply", conversation_id=conversation, text=too_big, client_msg_id="2"
            )
            assert await alice.expect_closed() == 1009
        # Back again: the conversation is still hers, with everything stored before the
        # oversized frame and nothing of it.
        async with agent_client(gw, "alice") as again:
            (kept,) = again.frames[0]["conversations"]
            assert kept["id"] == conversation
            assert [m["text"] for m in kept["messages"]] == ["please keep this", "hi"]
            await visitor.send(type="message", text="still there?")
            message = await again.expect("message")
            assert message["message"]["text"] == "still there?"


@pytest.mark.parametrize("token", ["wrong", None])
async def test_bad_or_missing_token_closes_with_4401(config, redis_url, token):
    async with running(config, redis_url) as gw, connect(gw.ws_url("/agent/ws")) as client:
        await client.send(type="hello", token=token, protocol=1)
        error = await client.expect("error")
        assert error["code"] == "bad_token"
        assert await client.expect_closed() == 4401


async def test_token_in_authorization_header(config, redis_url):
    async with (
        running(config, redis_url) as gw,
        connect(
            gw.ws_url("/agent/ws"), additional_headers={"Authorization": "Bearer tok-alice"}
        ) as client,
    ):
        await client.send(type="hello", protocol=1)
        welcome = await client.expect("welcome")
        assert welcome["agent"]["id"] == "alice"


async def test_unsupported_protocol_version_is_refused(config, redis_url):
    async with running(config, redis_url) as gw, connect(gw.ws_url("/agent/ws")) as client:
        await client.send(type="hello", token="tok-alice", protocol=99)
        error = await client.expect("error")
        assert error["code"] == "unsupported_protocol" and error["field"] == "protocol"
        await client.expect_closed()


async def test_a_second_connection_replaces_the_first_with_4409(config, redis_url):
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as first:
        async with agent_client(gw, "alice") as second:
            assert await first.expect_closed() == 4409
            # The replaced socket's late disconnect must not log the new one out.
            async with customer(gw) as visitor:
                await visitor.send(type="message", text="still routed?")
                offer = await second.expect("offer")
                assert offer["conversation"]["messages"][0]["text"] == "still routed?"


async def test_reconnecting_agent_is_welcomed_with_open_conversations_and_offers(config, redis_url):
    async with running(config, redis_url) as gw:
        async with customer(gw) as one, customer(gw) as two:
            async with agent_client(gw, "alice") as alice:
                await one.send(type="message", text="one")
                offer = await alice.expect("offer")
                await alice.send(type="accept", offer_id=offer["offer_id"])
                await alice.expect("assigned")
                await two.send(type="message", text="two")
                pending = await alice.expect("offer")
            async with agent_client(gw, "alice") as again:
                welcome = again.frames[0]
                assert [c["id"] for c in welcome["conversations"]] == [offer["conversation"]["id"]]
                resent = await again.expect("offer")
                assert resent["offer_id"] == pending["offer_id"]
