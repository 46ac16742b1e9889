"""Lifecycle events through the public surface: a customer on web chat and an agent on their
socket take a conversation through its life, and a webhook receiver on a real socket gets
every event once per id, signed, in order per conversation (also a transfer, the customer's
rating and the QA score after the close); a receiver answering 500 gets them later; one that
never recovers gets them parked, listed a page at a time, and a replay sends a parked one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from harness import RunningGateway, accept_offer, agent, agent_client, customer, make_config
from harness import running as running_gateway
from helpers import wait_until
from webhook_receiver import Receiver, receiving, webhook

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

LIFE_CYCLE = [
    "conversation_created",
    "conversation_queued",
    "message_in",
    "conversation_offered",
    "offer_declined",
    "conversation_offered",
    "conversation_assigned",
    "message_out",
    "note_added",
    "message_in",
    "conversation_closed",
]


@asynccontextmanager
async def gateway(
    tenant: str, redis_url: str, hook: dict[str, Any], **tables: Any
) -> AsyncIterator[RunningGateway]:
    tables.setdefault("agents", [agent("alice"), agent("bob")])
    config = make_config(
        tenant,
        admin={"token": TOKEN},
        webhooks=[hook],
        conversations={"close_reasons": ["solved", "spam"]},
        **tables,
    )
    async with running_gateway(config, redis_url) as gw:
        yield gw


async def admin_get(gw: RunningGateway, path: str) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.admin_base + path, headers=AUTH) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def life_cycle(gw: RunningGateway) -> str:
    """A conversation from the customer's first message to its close, with a decline, a
    reply, a note and a second customer message; its id."""
    async with customer(gw) as visitor:
        await visitor.send(type="message", text="我的包裹丢了 where is my parcel")
        await visitor.expect("queue")
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            await alice.send(type="decline", offer_id=offer["offer_id"])
            async with agent_client(gw, "bob") as bob:
                conversation_id = await accept_offer(bob)
                # A client_msg_id per conversation: the same one again would be a duplicate.
                await bob.send(
                    type="reply",
                    conversation_id=conversation_id,
                    text="On it",
                    client_msg_id=f"r-{conversation_id}",
                )
                await bob.expect("reply_ack")
                await bob.send(type="note", conversation_id=conversation_id, text="VIP customer")
                await bob.expect("note")
                await visitor.expect("message")
                await visitor.send(type="message", text="thanks")
                await bob.expect("message")
                await bob.send(type="close", conversation_id=conversation_id, reason="solved")
                await bob.expect("closed")
    return conversation_id


def check_delivered_once_signed_in_order(
    receiver: Receiver, conversation_id: str, expected: list[str] = LIFE_CYCLE
) -> None:
    ids = [e["id"] for e in receiver.accepted]
    assert len(ids) == len(set(ids)), "an event was acknowledged twice"
    assert receiver.bad_signatures == 0
    mine = [e for e in receiver.accepted if e["conversation_id"] == conversation_id]
    assert [e["type"] for e in mine] == expected
    # Stream ids increase: arrival order is the order the changes were made in.
    keys = [tuple(int(p) for p in e["id"].split("-")) for e in mine]
    assert keys == sorted(keys)


async def test_every_event_of_a_life_cycle_arrives_once_signed_and_in_order(tenant, redis_url):
    async with receiving() as receiver, gateway(tenant, redis_url, webhook(receiver.url)) as gw:
        conversation_id = await life_cycle(gw)
        await wait_until(
            lambda: receiver.has("conversation_closed", conversation_id),
            timeout=15,
            message="the close reached the receiver",
        )
        check_delivered_once_signed_in_order(receiver, conversation_id)
        events = {e["type"]: e for e in receiver.accepted}
        created = events["conversation_created"]
        assert created["tenant"] == tenant
        assert created["data"]["channel"] == "webchat" and created["data"]["queue"] == "general"
        assert created["occurred_at"] > 1_600_000_000_000
        first_in = next(e for e in receiver.accepted if e["type"] == "message_in")
        assert first_in["data"]["message"]["text"] == "我的包裹丢了 where is my parcel"
        assert events["offer_declined"]["data"]["agent"] == "alice"
        assert events["conversation_assigned"]["data"] == {
            "agent": "bob",
            "queue": "general",
            "offer_id": events["conversation_assigned"]["data"]["offer_id"],
            "how": "accepted",
        }
        assert events["message_out"]["data"]["agent"] == "bob"
        assert events["message_out"]["data"]["first_reply"] is True
        assert events["message_out"]["data"]["message"]["text"] == "On it"
        assert events["note_added"]["data"] == {"agent": "bob", "note": {"text": "VIP customer"}}
        closed = events["conversation_closed"]["data"]
        assert closed["reason"] == "closed_by_agent" and closed["close_reason"] == "solved"
        assert closed["agent"] == "bob" and closed["previous_state"] == "assigned"
        await wait_until(
            lambda: lag_is(gw, 0), timeout=10, message="the webhook's lag comes back to 0"
        )


AFTER_A_TRANSFER = [
    "conversation_created",
    "conversation_queued",
    "message_in",
    "conversation_offered",
    "conversation_assigned",
    "conversation_transferred",
    "conversation_offered",
    "conversation_assigned",
    "conversation_closed",
    "csat_received",
    "qa_scored",
]


async def test_a_transfer_the_rating_and_the_qa_score_follow_in_order(tenant, redis_url):
    # The rest of a life: a transfer to another agent, the customer's rating after the close
    # (a low one: it lands in QA) and a QA score ((100 + 2·50 + 2·50 + 100) / 6), each once,
    # signed, in order.
    async with receiving() as receiver, gateway(tenant, redis_url, webhook(receiver.url)) as gw:
        async with (
            customer(gw) as visitor,
            agent_client(gw, "alice") as alice,
            agent_client(gw, "bob") as bob,
        ):
            await visitor.send(type="message", text="退款 refund")
            conversation_id = await accept_offer(alice)
            await alice.send(
                type="transfer", conversation_id=conversation_id, to_agent="bob", note="billing"
            )
            assert await accept_offer(bob) == conversation_id
            await bob.send(type="close", conversation_id=conversation_id)
            await visitor.expect("csat_request", conversation_id=conversation_id)
            await visitor.send(type="csat", conversation_id=conversation_id, score=2)
            await visitor.expect("csat_thanks")
        items = {"greeting": 100, "accuracy": 50, "resolution": 50, "tone": 100}
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.post(f"{gw.admin_base}/api/qa/{conversation_id}", json={"items": items}) as r,
        ):
            assert r.status == 200, await r.text()
        await wait_until(
            lambda: receiver.has("qa_scored", conversation_id), timeout=15, message="the score"
        )
        check_delivered_once_signed_in_order(receiver, conversation_id, AFTER_A_TRANSFER)
        events = {e["type"]: e["data"] for e in receiver.accepted}
        moved = events["conversation_transferred"]
        assert (moved["from_agent"], moved["to_agent"]) == ("alice", "bob")
        assert moved["note"] == "billing"
        assert events["csat_received"]["score"] == 2 and events["csat_received"]["agent"] == "bob"
        assert events["qa_scored"]["score"] == 66.67 and events["qa_scored"]["by"] == "admin"


async def lag_is(gw: RunningGateway, value: int) -> bool:
    hooks = (await admin_get(gw, "/api/webhooks"))["webhooks"]
    return hooks[0]["lag"] == value


async def test_a_receiver_answering_500_for_a_while_gets_the_events_later(tenant, redis_url):
    async with receiving() as receiver:
        receiver.failing = True
        async with gateway(tenant, redis_url, webhook(receiver.url, retry_for_s=600)) as gw:
            conversation_id = await life_cycle(gw)
            await wait_until(
                lambda: len(receiver.attempts) >= 3, timeout=15, message="the gateway retries"
            )
            assert receiver.accepted == []
            receiver.failing = False
            await wait_until(
                lambda: receiver.has("conversation_closed", conversation_id),
                timeout=20,
                message="the events arrive once the receiver is back",
            )
            check_delivered_once_signed_in_order(receiver, conversation_id)
            body = await metrics_text(gw)
            assert 'zhongtai_event_webhook_deliveries_total{outcome="failed",webhook="crm"}' in body
            delivered = metric_value(body, "delivered")
            assert delivered >= len(LIFE_CYCLE)


async def metrics_text(gw: RunningGateway) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gw.admin_base + "/metrics") as response,
    ):
        return await response.text()


def metric_value(body: str, outcome: str) -> float:
    prefix = f'zhongtai_event_webhook_deliveries_total{{outcome="{outcome}",webhook="crm"}} '
    line = next(line for line in body.splitlines() if line.startswith(prefix))
    return float(line.removeprefix(prefix))


async def test_an_event_failing_past_retry_for_is_parked_listed_and_replayed(tenant, redis_url):
    async with receiving() as receiver:
        receiver.failing = True
        hook = webhook(receiver.url, retry_for_s=0.3, events=["conversation_created"])
        async with gateway(tenant, redis_url, hook) as gw, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            await visitor.expect("queue")

            async def parked() -> list[dict[str, Any]]:
                page = await admin_get(gw, "/api/webhooks/crm/parked")
                return page["parked"]

            found = await wait_until(parked, timeout=15, message="the event is parked")
            (dead,) = found
            assert dead["event"]["type"] == "conversation_created"
            assert dead["attempts"] >= 1 and "HTTP 500" in dead["last_error"]
            hooks = (await admin_get(gw, "/api/webhooks"))["webhooks"]
            assert hooks[0]["name"] == "crm" and hooks[0]["parked"] == 1
            assert receiver.accepted == []

            receiver.failing = False
            async with aiohttp.ClientSession() as http:
                url = f"{gw.admin_base}/api/webhooks/crm/parked/{dead['event']['id']}/replay"
                async with http.post(url, headers=AUTH) as response:
                    assert response.status == 202
                async with http.post(url, headers=AUTH) as response:
                    assert response.status == 404  # replayed already: no longer parked
                    assert (await response.json())["error"] == "unknown_event"
                async with http.get(
                    f"{gw.admin_base}/api/webhooks/nope/parked", headers=AUTH
                ) as response:
                    assert response.status == 404
                async with http.get(
                    f"{gw.admin_base}/api/webhooks/crm/parked?limit=0", headers=AUTH
                ) as response:
                    assert response.status == 400
                    assert (await response.json())["field"] == "limit"
            await wait_until(
                lambda: receiver.accepted, timeout=15, message="the replay reaches the receiver"
            )
            assert [e["id"] for e in receiver.accepted] == [dead["event"]["id"]]
            assert await parked() == []


async def test_two_processes_delivering_keep_each_conversations_order(tenant, redis_url):
    """Both processes read the webhook's group, so a conversation's events are split
    between them; each waits for the conversation's earlier events, whoever holds them."""
    async with receiving() as receiver:
        hook = webhook(receiver.url, batch=1, concurrency=1)
        async with (
            gateway(tenant, redis_url, hook) as first,
            gateway(tenant, redis_url, hook) as second,
        ):
            conversations = [await life_cycle(first) for _ in range(3)]

            def all_closed() -> bool:
                return all(receiver.has("conversation_closed", c) for c in conversations)

            await wait_until(all_closed, timeout=30, message="every close arrives")
            for conversation_id in conversations:
                check_delivered_once_signed_in_order(receiver, conversation_id)
            # Each process delivered a share (the second process had no socket at all).
            for gw in (first, second):
                get = gw.services.metrics.registry.get_sample_value
                labels = {"webhook": "crm", "outcome": "delivered"}
                assert get("zhongtai_event_webhook_deliveries_total", labels) > 0


async def test_the_dead_letters_page_on_past_one_replayed_meanwhile(tenant, redis_url):
    # An admin pages through the dead letters and replays some as they go: the next page
    # starts after the page before even when the event its `next` named was replayed since
    # (it no longer is a dead letter), and a bad `after` or parameter is a 400 naming it.
    async with receiving() as receiver:
        receiver.failing = True
        hook = webhook(receiver.url, retry_for_s=0.3, events=["conversation_created"])
        async with gateway(tenant, redis_url, hook) as gw:
            for text in ("one", "two", "three"):
                async with customer(gw) as visitor:
                    await visitor.send(type="message", text=text)
                    await visitor.expect("queue")

            async def all_parked() -> list[str] | None:
                page = await admin_get(gw, "/api/webhooks/crm/parked")
                ids = [p["event"]["id"] for p in page["parked"]]
                return ids if len(ids) == 3 else None

            everyone = await wait_until(all_parked, timeout=15, message="three are parked")
            first = await admin_get(gw, "/api/webhooks/crm/parked?limit=2")
            assert [p["event"]["id"] for p in first["parked"]] == everyone[:2]
            async with aiohttp.ClientSession(headers=AUTH) as http:
                replay = f"{gw.admin_base}/api/webhooks/crm/parked/{everyone[1]}/replay"
                async with http.post(replay) as response:
                    assert response.status == 202
                rest = await admin_get(
                    gw, f"/api/webhooks/crm/parked?limit=2&after={first['next']}"
                )
                assert [p["event"]["id"] for p in rest["parked"]] == everyone[2:]
                assert rest["next"] is None
                for query, field in [("after=zz", "after"), ("limt=2", "limt")]:
                    url = f"{gw.admin_base}/api/webhooks/crm/parked?{query}"
                    async with http.get(url) as response:
                        assert response.status == 400, query
                        assert (await response.json())["field"] == field
