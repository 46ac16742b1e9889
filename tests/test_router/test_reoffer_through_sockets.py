"""Customers are not left waiting for the decline cooldown while an agent who could take
them is free, escalation goes on through declines, and the admin API says why a
conversation waits (waiting_reason): through the agents' and customers' sockets and the
admin API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from harness import Client, RunningGateway, agent, agent_client, customer, make_config, running
from helpers import wait_until

TOKEN = "secret"
FAST = {"sweep_interval_s": 0.05, "position_interval_s": 0.0}


async def admin_get(gw: RunningGateway, path: str) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.admin_base + path, headers=headers) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def reason_of(gw: RunningGateway, conversation_id: str) -> str | None:
    return (await admin_get(gw, f"/api/conversations/{conversation_id}"))["waiting_reason"]


async def listed_reason(gw: RunningGateway, queue: str, conversation_id: str) -> str | None:
    """The waiting_reason GET /api/queues shows for the conversation ('absent' if unlisted)."""
    queues = (await admin_get(gw, "/api/queues"))["queues"]
    waiting = next(q for q in queues if q["name"] == queue)["waiting"]
    found = [w["waiting_reason"] for w in waiting if w["conversation_id"] == conversation_id]
    return found[0] if found else "absent"


async def until_reason(gw: RunningGateway, conversation_id: str, wanted: str | None) -> None:
    async def there() -> bool:
        return await reason_of(gw, conversation_id) == wanted

    await wait_until(there, timeout=10, message=f"{conversation_id} waits: {wanted}")


async def written(visitor: Client, text: str) -> str:
    """The id of the conversation the customer's message joined."""
    await visitor.send(type="message", text=text)
    echo = await visitor.expect("message")
    return echo["conversation_id"]


async def test_offered_again_to_the_oldest_decliner_one_offer_timeout_after_the_last(
    tenant, redis_url
):
    """The demo's story: one agent lets the offer time out, the other declines; with the
    default cooldown (300 s) both would be skipped for five minutes. The conversation is
    offered again, to the agent whose decline is the older, an offer timeout later."""
    timeout_s = 1.0
    config = make_config(
        tenant,
        agents=[agent("alice"), agent("bob")],
        routing=FAST | {"offer_timeout_s": timeout_s},
        admin={"token": TOKEN},
    )
    loop = asyncio.get_running_loop()
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as visitor,
    ):
        conv = await written(visitor, "is anyone there?")
        first = await _first_offer(alice, bob)
        silent, decliner = (alice, bob) if first[0] is alice else (bob, alice)
        assert first[1]["conversation"]["id"] == conv
        await silent.expect("offer_revoked", offer_id=first[1]["offer_id"])
        second = await decliner.expect("offer")
        assert second["conversation"]["id"] == conv
        await decliner.send(type="decline", offer_id=second["offer_id"], reason="busy")
        declined_at = loop.time()
        again = await silent.expect("offer", timeout=timeout_s + 10)
        waited = loop.time() - declined_at
        assert again["conversation"]["id"] == conv
        # Not before an offer timeout has passed since the decline, and long before the
        # cooldown: within the timeout and a margin for a busy machine.
        assert timeout_s - 0.05 <= waited < timeout_s + 10, waited
        assert await reason_of(gw, conv) == "offered"
        assert not [f for f in decliner.frames if f["type"] == "offer" and not f.get("_read")]


async def _first_offer(*agents: Client) -> tuple[Client, dict[str, Any]]:
    """The first offer any of the agents gets, and whose it is."""
    tasks = {asyncio.ensure_future(a.expect("offer")): a for a in agents}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    task = next(iter(done))
    return tasks[task], task.result()


async def test_escalation_goes_on_while_the_conversation_is_offered_and_declined(tenant, redis_url):
    """vip overflows to general after 0.5 s. alice, the one vip agent, holds the offer past
    that, then declines: the step held back while it was offered still comes, and bob, whom
    only the overflow lets take it, is offered it long before any re-offer to alice."""
    config = make_config(
        tenant,
        agents=[agent("alice", skills={"vip": 1}), agent("bob")],
        queues=[
            {
                "name": "vip",
                "skills": {"vip": 1},
                "overflow": "general",
                "escalation": [{"after_s": 0.5, "overflow": True}],
            },
            {"name": "general"},
        ],
        rules=[{"name": "vip", "keywords": ["vip"], "queue": "vip"}],
        routing=FAST | {"offer_timeout_s": 60.0},
        admin={"token": TOKEN},
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as visitor,
    ):
        conv = await written(visitor, "vip: my order")
        offer = await alice.expect("offer")
        assert offer["conversation"]["id"] == conv

        async def past_the_step() -> bool:
            view = await admin_get(gw, f"/api/conversations/{conv}")
            return view["route"]["waiting_s"] > 0.6

        await wait_until(past_the_step, timeout=10)
        assert await reason_of(gw, conv) == "offered"
        await alice.send(type="decline", offer_id=offer["offer_id"])
        # The step was held back while the offer was out, not dropped: bob gets it.
        taken = await bob.expect("offer", timeout=20)
        assert taken["conversation"]["id"] == conv
        view = await admin_get(gw, f"/api/conversations/{conv}")
        assert view["route"]["escalation_step"] == 1
        assert view["route"]["overflow_queues"] == ["general"]


def _closed_today() -> list[str]:
    today = datetime.now(UTC).date()
    return [str(today + timedelta(days=d)) for d in (-1, 0, 1)]


async def test_the_admin_api_says_why_a_conversation_waits(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice", capacity=1), agent("bob", capacity=1)],
        queues=[
            {"name": "general", "sticky_wait_s": 60.0},
            {"name": "klingon", "skills": {"klingon": 1}},
            {"name": "night", "hours": "never"},
        ],
        hours={"never": {"holidays": _closed_today()}},
        rules=[
            {"name": "klingon", "keywords": ["klingon"], "queue": "klingon"},
            {"name": "night", "keywords": ["night"], "queue": "night"},
        ],
        routing=FAST | {"offer_timeout_s": 60.0},
        admin={"token": TOKEN},
    )
    async with (
        running(config, redis_url) as gw,
        customer(gw) as xena,
        customer(gw) as yuri,
        customer(gw) as zoe,
        customer(gw) as kor,
        customer(gw) as owl,
    ):
        # Nobody signed in yet.
        first = await written(xena, "hello")
        await until_reason(gw, first, "no_agent_available")
        assert await listed_reason(gw, "general", first) == "no_agent_available"
        # No configured agent has the skill.
        klingon = await written(kor, "klingon please")
        await until_reason(gw, klingon, "no_eligible_agent")
        # Its queue is closed today.
        night = await written(owl, "night shift?")
        await until_reason(gw, night, "outside_hours")
        assert await listed_reason(gw, "night", night) == "outside_hours"
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            assert offer["conversation"]["id"] == first
            assert await reason_of(gw, first) == "offered"
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await until_reason(gw, first, None)
            await alice.send(type="close", conversation_id=first)
            await alice.expect("closed", conversation_id=first)
            assert await reason_of(gw, first) is None
            # alice takes yuri and is full.
            yuris = await written(yuri, "me next")
            offer = await alice.expect("offer")
            assert offer["conversation"]["id"] == yuris
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            # xena comes back: she waits for alice, her last agent, who has no room.
            back = await written(xena, "it's me again")
            await until_reason(gw, back, "held_for_agent")
            # zoe waits for room: alice is full, bob is not there.
            zoes = await written(zoe, "and me")
            await until_reason(gw, zoes, "no_room")
            assert await listed_reason(gw, "general", zoes) == "no_room"
            async with agent_client(gw, "bob") as bob:
                offer = await bob.expect("offer")
                assert offer["conversation"]["id"] == zoes
                await bob.send(type="decline", offer_id=offer["offer_id"])
                # bob, the only agent with room, declined: zoe waits for the re-offer.
                await until_reason(gw, zoes, "all_declined")
                assert await listed_reason(gw, "general", zoes) == "all_declined"
                assert await reason_of(gw, back) == "held_for_agent"
