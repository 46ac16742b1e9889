"""The routing engine's features, each through the public sockets: rules, strategies,
capacity across channels, offers, escalation, returning customers, transfer, business hours,
queue positions, inactivity and the grace period."""

from __future__ import annotations

import aiohttp
import pytest
from harness import accept_offer, agent, agent_client, customer, make_config, running

from adapters.fake import FakeAdapter

FAST = {"sweep_interval_s": 0.05, "position_interval_s": 0.1}


def chat_agent(agent_id: str, capacity: int = 3, **fields):
    return agent(agent_id, capacity=capacity, **fields)


async def test_rules_send_complaints_to_the_complaint_queue_with_grade_priority(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[
            chat_agent("alice", skills={"general": 3}),
            chat_agent("carol", skills={"complaint": 4}),
        ],
        queues=[
            {"name": "general", "skills": {"general": 1}},
            {"name": "complaints", "skills": {"complaint": 3}, "priority": 3},
        ],
        rules=[
            {
                "name": "complaints",
                "keywords": ["投诉", "complaint"],
                "queue": "complaints",
                "grade": "A",
            }
        ],
        grades=[{"name": "A", "priority": 8, "sla_s": 30}],
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "carol") as carol,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="我要投诉, the parcel never came")
        offer = await carol.expect("offer")
        conversation = offer["conversation"]
        assert conversation["queue"] == "complaints"
        assert conversation["priority"] == 8 and conversation["grade"] == "A"
        async with customer(gw) as other:
            await other.send(type="message", text="what are your opening hours?")
            general = await alice.expect("offer")
            assert general["conversation"]["queue"] == "general"


async def test_round_robin_takes_turns(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("alice"), chat_agent("bob")],
        queues=[{"name": "general", "strategy": "round_robin"}],
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
    ):
        got = []
        for i in range(4):
            async with customer(gw) as visitor:
                await visitor.send(type="message", text=f"n{i}")
                who, client = ("alice", alice) if i % 2 == 0 else ("bob", bob)
                offer = await client.expect("offer")
                got.append((who, offer["conversation"]["messages"][0]["text"]))
        assert got == [("alice", "n0"), ("bob", "n1"), ("alice", "n2"), ("bob", "n3")]


async def test_missed_offers_set_the_agent_away_with_the_reason(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("alice", capacity=5)],
        admin={"token": "sup-token"},
        routing={
            "offer_timeout_s": 0.2,
            "missed_offers_before_away": 2,
            "decline_cooldown_s": 0.0,
            **FAST,
        },
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="hello?")
        for _ in range(2):
            offer = await alice.expect("offer")
            await alice.expect("offer_revoked", offer_id=offer["offer_id"])
        status = await alice.expect("status")
        assert status == {
            "type": "status",
            "status": "away",
            "reason": "missed_offers",
            "_read": True,
        }
        # The supervisor sees why, on the admin API.
        headers = {"Authorization": "Bearer sup-token"}
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.get(gw.admin_base + "/api/agents") as response,
        ):
            assert response.status == 200
            (listed,) = (await response.json())["agents"]
        assert (listed["id"], listed["status"]) == ("alice", "away")
        assert listed["status_reason"] == "missed_offers"


@pytest.mark.parametrize("set_on", ["queue", "agent"])
async def test_auto_accept_assigns_directly(tenant, redis_url, set_on):
    config = make_config(
        tenant,
        agents=[chat_agent("alice", auto_accept=set_on == "agent")],
        queues=[{"name": "general", "auto_accept": set_on == "queue"}],
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="straight to you")
        assigned = await alice.expect("assigned")
        assert assigned["conversation"]["state"] == "assigned"
        await visitor.expect("agent", name="Agent")
        assert not [f for f in alice.frames if f["type"] == "offer"]


async def test_escalation_relaxes_skills_then_max_wait_leaves_a_message(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("junior", skills={"billing": 1})],
        queues=[
            {
                "name": "billing",
                "skills": {"billing": 4},
                "escalation": [{"after_s": 0.3, "relax_skills": True}],
                "max_wait_s": 0.2,
                "after_max_wait": "leave_message",
                "max_wait_message": "Leave us a message",
            }
        ],
        routing=FAST,
    )
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="invoice question")
        notice = await visitor.expect("message", timeout=5)
        while notice["message"]["direction"] != "out":
            notice = await visitor.expect("message", timeout=5)
        assert notice["message"]["text"] == "Leave us a message"
        async with agent_client(gw, "junior") as junior:
            offer = await junior.expect("offer")
            assert offer["conversation"]["leave_message"] is True


async def next_out(client) -> dict:
    """The next message frame the gateway sent to the customer (not an echo of theirs)."""
    frame = await client.expect("message", timeout=5)
    while frame["message"]["direction"] != "out":
        frame = await client.expect("message", timeout=5)
    return frame


def max_wait_config(tenant: str, after_max_wait: str, message: str):
    """A queue whose maximum wait is 0.2 s, and an agent who never signs in: nobody can take
    the chat before it."""
    return make_config(
        tenant,
        agents=[chat_agent("alice")],
        queues=[
            {
                "name": "general",
                "max_wait_s": 0.2,
                "after_max_wait": after_max_wait,
                "max_wait_message": message,
            }
        ],
        routing=FAST,
    )


async def test_max_wait_close_tells_the_customer_and_closes(tenant, redis_url):
    config = max_wait_config(tenant, "close", "Nobody is free, we close this chat")
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="anyone there?")
        echo = await visitor.expect("message", timeout=5)
        conversation_id = echo["conversation_id"]
        notice = await next_out(visitor)
        assert notice["message"]["text"] == "Nobody is free, we close this chat"
        assert notice["conversation_id"] == conversation_id
        closed = await visitor.expect("closed", timeout=5)
        assert closed["reason"] == "max_wait"
        # The message came before the closed frame.
        assert visitor.frames.index(notice) < visitor.frames.index(closed)
        router = gw.services.router
        state = await router.redis.hget(router.keys.state, conversation_id)
        assert state == b"closed"
        stats = await router.queue_stats()
        assert stats["general"].depth == 0


async def test_max_wait_auto_reply_reaches_the_customer_who_keeps_waiting(tenant, redis_url):
    config = max_wait_config(tenant, "auto_reply", "Thanks for waiting, an agent comes soon")
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        await visitor.send(type="message", text="anyone there?")
        echo = await visitor.expect("message", timeout=5)
        conversation_id = echo["conversation_id"]
        notice = await next_out(visitor)
        assert notice["message"]["text"] == "Thanks for waiting, an agent comes soon"
        assert notice["conversation_id"] == conversation_id
        # Still waiting, in the queue: the next agent to sign in is offered it.
        conversation = await gw.services.router.conversation(conversation_id)
        assert conversation.state == "queued" and not conversation.leave_message
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            assert offer["conversation"]["id"] == conversation_id
        assert not [f for f in visitor.frames if f["type"] == "closed"]


async def test_overflow_adds_the_second_queues_agents(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("gina", skills={"general": 2})],
        queues=[
            {
                "name": "vip",
                "skills": {"vip": 3},
                "overflow": "general",
                "escalation": [{"after_s": 0.2, "overflow": True, "raise_priority": 2}],
            },
            {"name": "general", "skills": {"general": 1}},
        ],
        rules=[{"name": "vip", "tags": ["vip"], "queue": "vip"}],
        routing=FAST,
    )
    async with running(config, redis_url) as gw, agent_client(gw, "gina") as gina:
        fake_vip = gw.services.host
        from adapters.contract import CustomerRef, Inbound

        await fake_vip.ingest(
            Inbound(
                channel="webchat",
                account="default",
                external_id="v1",
                customer=CustomerRef(id="vip-1"),
                text="hi",
                metadata={"tags": "VIP"},
            )
        )
        offer = await gina.expect("offer")
        assert offer["conversation"]["queue"] == "vip"
        assert offer["conversation"]["priority"] == 2


async def test_returning_customer_goes_to_the_last_agent(tenant, redis_url):
    config = make_config(tenant, agents=[chat_agent("alice"), chat_agent("bob")])
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        customer(gw) as visitor,
    ):
        # Give alice a conversation so that least-loaded would pick bob next.
        async with customer(gw) as other:
            await other.send(type="message", text="keep alice busy")
            busy = await alice.expect("offer")
            await alice.send(type="accept", offer_id=busy["offer_id"])
        await visitor.send(type="message", text="first visit")
        first = await bob.expect("offer")
        await bob.send(type="accept", offer_id=first["offer_id"])
        await bob.expect("assigned")
        await bob.send(type="close", conversation_id=first["conversation"]["id"])
        await visitor.expect("closed")
        await bob.send(type="set_status", status="away")
        await bob.expect("status", status="away")
        # bob is away: the returning customer never waits for him.
        await visitor.send(type="message", text="second visit")
        second = await alice.expect("offer")
        assert second["conversation"]["messages"][-1]["text"] == "second visit"
        await alice.send(type="accept", offer_id=second["offer_id"])
        await alice.send(type="close", conversation_id=second["conversation"]["id"])
        await alice.expect("closed", conversation_id=second["conversation"]["id"])
        # Now alice is the last agent and has room, though bob is idler.
        await bob.send(type="set_status", status="available")
        await bob.expect("status", status="available")
        await visitor.send(type="message", text="third visit")
        third = await alice.expect("offer")
        assert third["conversation"]["messages"][-1]["text"] == "third visit"


async def test_transfer_to_an_agent_and_to_a_queue_with_a_note(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[
            chat_agent("alice", skills={"general": 3}),
            chat_agent("bob", skills={"general": 3}),
            chat_agent("carol", skills={"billing": 3}),
        ],
        queues=[{"name": "general"}, {"name": "billing", "skills": {"billing": 2}}],
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
        agent_client(gw, "carol") as carol,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="help")
        offer = await alice.expect("offer")
        conv = offer["conversation"]["id"]
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(type="reply", conversation_id=conv, text="one moment", client_msg_id="1")
        await alice.expect("reply_ack")

        await alice.send(type="transfer", conversation_id=conv, to_agent="bob", note="VIP")
        assert (await alice.expect("closed", conversation_id=conv))["reason"] == "transferred"
        to_bob = await bob.expect("offer")
        assert to_bob["conversation"]["transfer_note"] == "VIP"
        assert to_bob["conversation"]["transferred_from"] == "alice"
        assert [m["text"] for m in to_bob["conversation"]["messages"]] == ["help", "one moment"]
        await bob.send(type="accept", offer_id=to_bob["offer_id"])
        await bob.expect("assigned")

        await bob.send(type="transfer", conversation_id=conv, to_queue="billing", note="invoice")
        to_carol = await carol.expect("offer")
        assert to_carol["conversation"]["queue"] == "billing"
        await bob.send(type="transfer", conversation_id=conv, to_queue="nowhere")
        assert (await bob.expect("error"))["code"] in ("not_yours", "unknown_queue")


async def test_transfer_to_an_unavailable_agent_is_refused(tenant, redis_url):
    config = make_config(tenant, agents=[chat_agent("alice"), chat_agent("bob")])
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="help")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        await alice.expect("assigned")
        await alice.send(
            type="transfer", conversation_id=offer["conversation"]["id"], to_agent="bob"
        )
        error = await alice.expect("error")
        assert error["code"] == "agent_unavailable"


@pytest.mark.parametrize("after_hours_queue", [None, "night"])
async def test_business_hours_hold_or_hand_over(tenant, redis_url, after_hours_queue):
    # A schedule that is never open now: one minute on 1 January 2001 only... as a weekday
    # range it would open weekly, so use a holiday on every day of the test instead.
    from datetime import UTC, date, datetime, timedelta

    today = datetime.now(UTC).date()
    holidays = [str(today + timedelta(days=d)) for d in (-1, 0, 1)]
    config = make_config(
        tenant,
        agents=[chat_agent("alice")],
        queues=[
            {
                "name": "office",
                "hours": "office",
                "closed_message": "We open at 9",
                **({"after_hours_queue": after_hours_queue} if after_hours_queue else {}),
            },
            {"name": "night"},
        ],
        hours={"office": {"timezone": "UTC", "holidays": holidays}},
        routing={"default_queue": "office"},
    )
    assert date  # imported for the holidays' type
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="are you there?")
        if after_hours_queue:
            offer = await alice.expect("offer")
            assert offer["conversation"]["queue"] == "night"
        else:
            notice = await visitor.expect("message")
            while notice["message"]["direction"] != "out":
                notice = await visitor.expect("message")
            assert notice["message"]["text"] == "We open at 9"
            stats = await gw.services.router.queue_stats()
            assert stats["office"].depth == 1  # held until opening, not offered
            assert not [f for f in alice.frames if f["type"] == "offer"]


async def test_queue_position_updates_with_an_estimate(tenant, redis_url):
    # Two accepts are recorded before anyone's place changes, so the estimate is there
    # whenever the position sweep runs (it tells a customer on change only).
    config = make_config(tenant, agents=[chat_agent("alice", capacity=2)], routing=FAST)
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as first,
        customer(gw) as second,
        customer(gw) as third,
        customer(gw) as fourth,
    ):
        await first.send(type="message", text="1")
        held = await accept_offer(alice)
        await second.send(type="message", text="2")
        await accept_offer(alice)
        await third.send(type="message", text="3")
        await third.expect("queue", position=1)
        await fourth.send(type="message", text="4")
        await fourth.expect("queue", position=2)
        await alice.send(type="close", conversation_id=held)
        moved = await fourth.expect("queue", position=1)
        # Two accepts a moment apart: a fast queue, so a short estimate.
        assert moved["eta_s"] is not None and moved["eta_s"] >= 0


@pytest.mark.parametrize("channel", ["fake", "webchat"])
async def test_position_auto_reply_is_sent_as_a_message(tenant, redis_url, channel):
    config = make_config(
        tenant,
        agents=[agent("alice", capacity=0) | {"capacity": {channel: 1}}],  # never signs in
        queues=[
            {
                "name": "general",
                "channels": [channel],
                "position_auto_reply": True,
                "position_message": "Sie sind Nummer {position} / 您排在第 {position} 位",
            }
        ],
        fake={} if channel == "fake" else None,
        webchat={} if channel == "webchat" else None,
    )
    async with running(config, redis_url) as gw:
        if channel == "fake":
            fake = gw.services.adapters["fake"]
            assert isinstance(fake, FakeAdapter)
            first = await fake.receive("hello", customer_id="c1")
            second = await fake.receive("hello too", customer_id="c2")
            replies = [await fake.next_sent(timeout=5), await fake.next_sent(timeout=5)]
            got = [(r.customer.id, r.conversation_id, r.text) for r in replies]
            assert got == [
                ("c1", first.conversation_id, "Sie sind Nummer 1 / 您排在第 1 位"),
                ("c2", second.conversation_id, "Sie sind Nummer 2 / 您排在第 2 位"),
            ]
        else:
            async with customer(gw) as one, customer(gw) as two:
                await one.send(type="message", text="hello")
                assert (await next_out(one))["message"]["text"] == (
                    "Sie sind Nummer 1 / 您排在第 1 位"
                )
                await two.send(type="message", text="hello too")
                assert (await next_out(two))["message"]["text"] == (
                    "Sie sind Nummer 2 / 您排在第 2 位"
                )
                # Sent once, as the conversation joins the queue, not after every message.
                await one.send(type="message", text="still here")
                echo = await one.expect("message", timeout=5)
                while echo["message"]["text"] != "still here":
                    echo = await one.expect("message", timeout=5)
                frames = [f for f in one.frames if f["type"] == "message"]
                assert [f["message"]["direction"] for f in frames].count("out") == 1


async def test_inactivity_warns_then_closes_and_frees_capacity(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("alice", capacity=1)],
        queues=[
            {
                "name": "general",
                "inactivity_warn_s": 0.2,
                "inactivity_close_s": 0.4,
                "inactivity_warning": "Still there?",
            }
        ],
        routing=FAST,
    )
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
    ):
        await visitor.send(type="message", text="hi")
        offer = await alice.expect("offer")
        await alice.send(type="accept", offer_id=offer["offer_id"])
        warning = await visitor.expect("message")
        while warning["message"]["direction"] != "out":
            warning = await visitor.expect("message")
        assert warning["message"]["text"] == "Still there?"
        closed = await alice.expect("closed", conversation_id=offer["conversation"]["id"])
        assert closed["reason"] == "inactive"
        await visitor.expect("closed")
        assert await gw.services.presence.loads("alice") == {"webchat": 0}


async def test_grace_period_requeues_unanswered_conversations(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[chat_agent("alice"), chat_agent("bob")],
        presence={"grace_s": 0.2, "heartbeat_interval_s": 0.05},
        routing=FAST,
    )
    async with running(config, redis_url) as gw, customer(gw) as visitor:
        async with agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="hi")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
        async with agent_client(gw, "bob") as bob:
            again = await bob.expect("offer")
            assert again["conversation"]["id"] == offer["conversation"]["id"]
        assert (await gw.services.presence.statuses())["alice"] == "offline"
