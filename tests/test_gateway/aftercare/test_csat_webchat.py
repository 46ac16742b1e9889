"""CSAT on web chat, through the sockets: the close brings a csat_request frame, the
visitor's csat frame is stored once and reaches the agent who held the conversation, bad
input gets an error frame naming the field, a queue with ``csat = false`` asks nothing, and
an answer after the window is refused. The admin API shows the rating."""

from __future__ import annotations

import aiohttp
import redis.asyncio as aioredis
from harness import accept_offer, agent, agent_client, customer, make_config, running

from router.events import decode_entry
from router.keys import RouterKeys

ADMIN = {"Authorization": "Bearer admin-secret"}


async def events_of(redis_url: str, tenant: str, type_: str) -> list[dict]:
    """The data of the tenant's lifecycle events of one type, oldest first."""
    client = aioredis.from_url(redis_url)
    try:
        entries = await client.xrange(RouterKeys(tenant, []).events)
    finally:
        await client.aclose()
    decoded = (decode_entry(i, f) for i, f in entries)
    return [{"conversation_id": e.conversation_id, **e.data} for e in decoded if e.type == type_]


def config_for(tenant: str, **tables):
    return make_config(
        tenant,
        agents=[agent("alice")],
        admin={"token": "admin-secret"},
        **tables,
    )


async def chat_closed_by(alice, visitor) -> str:
    """A conversation opened by the visitor, accepted and closed by alice."""
    await visitor.send(type="message", text="my parcel is late", client_msg_id="c1")
    conversation_id = await accept_offer(alice)
    await alice.send(type="close", conversation_id=conversation_id)
    await alice.expect("closed", conversation_id=conversation_id)
    await visitor.expect("closed")
    return conversation_id


async def admin_conversation(gw, conversation_id: str) -> dict:
    async with (
        aiohttp.ClientSession(headers=ADMIN) as http,
        http.get(f"{gw.admin_base}/api/conversations/{conversation_id}") as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_the_close_asks_and_the_rating_reaches_the_agent(tenant, redis_url):
    async with (
        running(config_for(tenant), redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        conversation_id = await chat_closed_by(alice, visitor)
        request = await visitor.expect("csat_request")
        assert request == {
            "type": "csat_request",
            "conversation_id": conversation_id,
            "scale": 5,
            "_read": True,
        }

        for bad, field in [(0, "score"), (6, "score"), ("five", "score"), (4.5, "score")]:
            await visitor.send(type="csat", conversation_id=conversation_id, score=bad)
            error = await visitor.expect("error")
            assert error["code"] == "bad_frame" and error["field"] == field, error
        await visitor.send(type="csat", conversation_id=conversation_id)
        assert (await visitor.expect("error"))["field"] == "score"
        await visitor.send(type="csat", conversation_id="c-not-mine", score=3)
        error = await visitor.expect("error")
        assert (error["code"], error["field"]) == ("not_asked", "conversation_id")

        await visitor.send(
            type="csat", conversation_id=conversation_id, score=4, comment="快，谢谢"
        )
        thanks = await visitor.expect("csat_thanks")
        assert (thanks["conversation_id"], thanks["score"]) == (conversation_id, 4)
        told = await alice.expect("csat", conversation_id=conversation_id)
        assert (told["score"], told["scale"], told["comment"]) == (4, 5, "快，谢谢")

        await visitor.send(type="csat", conversation_id=conversation_id, score=1)
        error = await visitor.expect("error")
        assert (error["code"], error["field"]) == ("already_rated", "conversation_id")

        view = await admin_conversation(gw, conversation_id)
        csat = view["csat"]
        assert (csat["score"], csat["comment"], csat["agent"]) == (4, "快，谢谢", "alice")
        assert csat["asked"] is True and csat["answered_at"] is not None
        # One event for the one rating stored, written with it (the refused ones wrote none).
        assert await events_of(redis_url, tenant, "csat_received") == [
            {
                "conversation_id": conversation_id,
                "score": 4,
                "comment": "快，谢谢",
                "agent": "alice",
                "queue": "general",
                "channel": "webchat",
            }
        ]


async def test_another_visitor_cannot_rate_it(tenant, redis_url):
    async with (
        running(config_for(tenant), redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
        customer(gw) as stranger,
    ):
        conversation_id = await chat_closed_by(alice, visitor)
        await visitor.expect("csat_request")
        await stranger.send(type="csat", conversation_id=conversation_id, score=1)
        error = await stranger.expect("error")
        assert (error["code"], error["field"]) == ("not_asked", "conversation_id")


async def test_a_queue_with_csat_off_asks_nothing(tenant, redis_url):
    config = config_for(tenant, queues=[{"name": "general", "csat": False}])
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        conversation_id = await chat_closed_by(alice, visitor)
        await visitor.send(type="csat", conversation_id=conversation_id, score=5)
        error = await visitor.expect("error")
        assert error["code"] == "not_asked"
        assert not [f for f in visitor.frames if f["type"] == "csat_request"]
        assert (await admin_conversation(gw, conversation_id))["csat"]["asked"] is False


async def test_an_answer_after_the_window_is_refused(tenant, redis_url):
    config = config_for(tenant)
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        conversation_id = await chat_closed_by(alice, visitor)
        await visitor.expect("csat_request")
        window_ms = int(config.core.csat.window_s * 1000)
        board = gw.services.switchboard
        # The gateway's clock moved past the window (the rating is timed by it, not by sleep).
        real = board.aftercare.clock
        board.aftercare.clock = lambda: real() + window_ms + 1
        await visitor.send(type="csat", conversation_id=conversation_id, score=5)
        error = await visitor.expect("error")
        assert (error["code"], error["field"]) == ("expired", "conversation_id")
