"""The tenant's event stream as readers see it: what timers, offers, transfers, SLA misses and
the gateway's own auto-replies write, the stream trimmed by length and by age, and nothing
written when events are off."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from harness import agent, agent_client, customer, make_config, running
from helpers import wait_until

from adapters.model import Customer, Message
from gateway.config import CoreConfig, with_defaults
from router.engine import Router
from router.events import EventsConfig, decode_entry
from router.ids import new_id
from router.keys import RouterKeys
from router.results import Placement

TOKEN = "secret"


async def stream(redis: Any, tenant: str) -> list[dict[str, Any]]:
    entries = await redis.xrange(RouterKeys(tenant, []).events)
    return [
        {"type": e.type, "conversation_id": e.conversation_id, "data": e.data, "id": e.id}
        for e in (decode_entry(i, f) for i, f in entries)
    ]


async def types_of(redis: Any, tenant: str, conversation_id: str) -> list[str]:
    return [
        e["type"] for e in await stream(redis, tenant) if e["conversation_id"] == conversation_id
    ]


async def test_timers_offers_sla_transfers_and_auto_replies_write_events(tenant, redis_url, redis):
    queues = [
        {
            "name": "general",
            "sla_s": 0.2,
            "max_wait_s": 0.3,
            "after_max_wait": "auto_reply",
            "max_wait_message": "Still here, please wait",
            "escalation": [{"after_s": 0.1, "raise_priority": 2}],
        },
        {"name": "billing"},
    ]
    config = make_config(
        tenant,
        admin={"token": TOKEN},
        agents=[agent("alice"), agent("bob")],
        queues=queues,
        routing={"offer_timeout_s": 0.5, "sweep_interval_s": 0.05, "decline_cooldown_s": 0.0},
    )
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="help")
        await visitor.expect("queue")
        state = await wait_until(lambda: stream(redis, tenant), message="the first events")
        conv = state[0]["conversation_id"]

        async def waited() -> bool:
            kinds = await types_of(redis, tenant, conv)
            return "conversation_escalated" in kinds and "message_out" in kinds

        # The escalation step, then the maximum wait's auto-reply, before any agent comes.
        await wait_until(waited, message="the escalation and the auto-reply")
        async with agent_client(gw, "alice") as alice:
            await alice.expect("offer")  # left to time out
            await alice.expect("offer_revoked")
        async with agent_client(gw, "bob") as bob:
            offer = await bob.expect("offer")
            await bob.send(type="accept", offer_id=offer["offer_id"])
            await bob.expect("assigned")
            await bob.send(
                type="transfer", conversation_id=conv, to_queue="billing", note="invoice"
            )
            await bob.expect("closed")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{gw.admin_base}/api/conversations/{conv}/close",
                json={},
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as response,
        ):
            assert response.status == 200

        async def closed() -> bool:
            return "conversation_closed" in await types_of(redis, tenant, conv)

        await wait_until(closed, message="the close's event")
        events = [e for e in await stream(redis, tenant) if e["conversation_id"] == conv]
        kinds = [e["type"] for e in events]
        assert kinds[:3] == ["conversation_created", "conversation_queued", "message_in"], kinds
        by_type = {e["type"]: e["data"] for e in events}
        assert by_type["conversation_escalated"] == {"step": 1, "queue": "general", "priority": 2}
        auto = by_type["message_out"]
        assert auto["agent"] is None and auto["message"]["text"] == "Still here, please wait"
        timed_out = by_type["offer_timed_out"]
        assert timed_out["agent"] == "alice" and timed_out["queue"] == "general"
        assert by_type["sla_breached"]["queue"] == "general"
        assert by_type["sla_breached"]["sla_s"] == 0.2
        assert by_type["sla_breached"]["waited_s"] > 0.2
        assert by_type["conversation_transferred"] == {
            "from_agent": "bob",
            "by_agent": "bob",
            "from_queue": "general",
            "to_queue": "billing",
            "to_agent": None,
            "note": "invoice",
        }
        assert by_type["conversation_closed"]["reason"] == "closed_by_supervisor"
        # Back in a queue after the transfer, or offered again to bob (no cooldown).
        assert by_type["conversation_closed"]["previous_state"] in ("queued", "offered")
        assert by_type["conversation_closed"]["queue"] == "billing"
        # The order of the changes: the offer before its timeout, the accept before the
        # breach it revealed, the transfer before the close.
        assert kinds.index("conversation_offered") < kinds.index("offer_timed_out")
        assert kinds.index("conversation_assigned") < kinds.index("sla_breached")
        assert kinds.index("conversation_transferred") < kinds.index("conversation_closed")


def ingest_args(conv_customer: str, at: int, text: str) -> dict[str, Any]:
    message = Message(
        id=new_id("m", at),
        direction="in",
        text=text,
        sent_at=datetime.fromtimestamp(at / 1000, UTC),
    )
    return {
        "channel": "webchat",
        "account": "default",
        "external_id": f"{conv_customer}-{at}",
        "customer": Customer(id=conv_customer),
        "message": message,
        "now_ms": at,
        "placement": Placement(queue="general", priority=0),
    }


async def test_the_stream_is_trimmed_by_length(redis, tenant):
    core = with_defaults(CoreConfig())
    events = EventsConfig(max_len=10, max_age_s=0)
    router = Router(redis, tenant, core.queues, core.routing, "general", events)
    await router.sync_queues()
    now = 1_800_000_000_000
    for i in range(400):
        await router.ingest(**ingest_args("v1", now + i, f"message {i}"))
    length = await redis.xlen(router.keys.events)
    # Trimmed approximately: whole blocks of entries (100 by default) go at once.
    assert 10 <= length <= 10 + 100
    last = await redis.xrevrange(router.keys.events, count=1)
    assert decode_entry(*last[0]).data["message"]["text"] == "message 399"


async def test_the_stream_is_trimmed_by_age(redis, tenant):
    # Events older than max_age_s (by Redis's clock, which stream ids carry) go at the next
    # write, also when the length is far below max_len. 300 events of an hour ago fill three
    # whole blocks of the stream (the age trim drops whole blocks, like the length trim).
    core = with_defaults(CoreConfig())
    router = Router(redis, tenant, core.queues, core.routing, "general", EventsConfig())
    await router.sync_queues()
    hour_ago_ms = int(time.time() * 1000) - 3_600_000
    for i in range(300):
        await redis.xadd(router.keys.events, {"type": "old"}, id=f"{hour_ago_ms}-{i}")
    aged = Router(redis, tenant, core.queues, core.routing, "general", EventsConfig(max_age_s=60))
    await router.ingest(**ingest_args("v1", int(time.time() * 1000), "kept, not aged"))
    assert await redis.xlen(router.keys.events) == 303, "7 days (the default) keep them"
    await aged.ingest(**ingest_args("v2", int(time.time() * 1000), "fresh"))
    kinds = [e["type"] for e in await stream(redis, tenant)]
    # Old ones may stay in the block the fresh ones share (today's Redis leaves none).
    assert kinds.count("old") < 100, "whole blocks of events past max_age_s are gone"
    fresh = ["conversation_created", "conversation_queued", "message_in"]
    assert [k for k in kinds if k != "old"] == fresh * 2


async def test_nothing_is_written_when_events_are_off(redis, tenant, redis_url):
    config = make_config(tenant, events={"enabled": False}, agents=[agent("alice")])
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="hello")
        await visitor.expect("queue")
        async with agent_client(gw, "alice") as alice:
            await alice.expect("offer")
    assert await redis.exists(RouterKeys(tenant, []).events) == 0


async def test_a_reply_the_channel_refused_is_followed_by_message_out_failed(
    tenant, redis_url, redis
):
    config = make_config(
        tenant,
        agents=[agent("alice", capacity=0) | {"capacity": {"fake": 2}}],
        fake={"account": "shop"},
        webchat=None,
    )
    async with running(config, redis_url) as gw, agent_client(gw, "alice") as alice:
        fake = gw.services.adapters["fake"]
        await fake.receive("hello", customer_id="c1")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        conv = offer["conversation"]["id"]
        fake.fail_next_send(code="45015", detail="reply window closed")
        await alice.send(type="reply", conversation_id=conv, text="sorry", client_msg_id="r1")
        await alice.expect("error", client_msg_id="r1")
        await alice.send(type="reply", conversation_id=conv, text="sorry", client_msg_id="r1")
        await alice.expect("reply_ack", client_msg_id="r1")
    events = [e for e in await stream(redis, tenant) if e["conversation_id"] == conv]
    outs = [(e["type"], e["data"].get("message_id")) for e in events if "message_out" in e["type"]]
    refused = events[[e["type"] for e in events].index("message_out")]["data"]["message"]["id"]
    assert outs[:2] == [("message_out", None), ("message_out_failed", refused)]
    assert [t for t, _ in outs] == ["message_out", "message_out_failed", "message_out"]
