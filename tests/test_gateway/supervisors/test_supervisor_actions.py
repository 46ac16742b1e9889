"""What a lead does on the supervisor socket: transfer, close, take over and set an agent's
status, each acknowledged with ``done`` and seen by the agents and customers concerned, and
each refused outside the lead's queues."""

from __future__ import annotations

from harness import accept_offer, agent_client, customer
from supervisor_support import admin_get, centre, lead


async def say(visitor, text: str) -> str:
    await visitor.send(type="message", text=text)
    return (await visitor.expect("message"))["conversation_id"]


async def test_transfer_to_an_agent_and_to_a_queue(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as visitor,
        lead(gw, "tok-lin") as (lin, _),
    ):
        await visitor.send(type="message", text="hello there")
        conversation_id = await accept_offer(alice)
        async with agent_client(gw, "carol") as carol:
            await lin.send(
                type="transfer",
                request_id="t1",
                conversation_id=conversation_id,
                to_agent="carol",
                note="she knows this customer",
            )
            assert (await lin.expect("done", request_id="t1"))["action"] == "transfer"
            closed = await alice.expect("closed", conversation_id=conversation_id)
            assert closed["reason"] == "transferred"
            assert await accept_offer(carol) == conversation_id
            # Back to a queue: billing, which bob serves.
            async with agent_client(gw, "bob") as bob:
                await lin.send(
                    type="transfer",
                    request_id="t2",
                    conversation_id=conversation_id,
                    to_queue="billing",
                )
                await lin.expect("done", request_id="t2")
                await carol.expect("closed", conversation_id=conversation_id)
                assert await accept_offer(bob) == conversation_id


async def test_close_and_take_over(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as first,
        customer(gw) as second,
        lead(gw, "tok-lin") as (lin, _),
        lead(gw, "tok-gail") as (gail, _),
    ):
        await first.send(type="message", text="anyone?")
        held = await accept_offer(alice)
        # Lin takes it over: it moves from alice to Lin's own agent account, carol.
        async with agent_client(gw, "carol") as carol:
            await lin.send(type="take_over", request_id="k1", conversation_id=held)
            assert (await lin.expect("done", request_id="k1"))["action"] == "take_over"
            closed = await alice.expect("closed", conversation_id=held)
            assert closed["reason"] == "transferred"
            assert await accept_offer(carol) == held
            # Taking over what her account holds already is refused, not done again.
            await lin.send(type="take_over", request_id="k0", conversation_id=held)
            error = await lin.expect(("done", "error"), request_id="k0")
            assert (error["code"], error["field"]) == ("already_assigned", "conversation_id")
        # Gail has no agent account of her own.
        other = await say(second, "me too")
        await gail.send(type="take_over", request_id="k2", conversation_id=other)
        error = await gail.expect("error", request_id="k2")
        assert error["code"] == "no_agent_account"
        # A close by a lead ends it for the customer.
        await gail.send(type="close", request_id="c1", conversation_id=other, reason="spam")
        assert (await gail.expect("done", request_id="c1"))["action"] == "close"
        assert (await second.expect("closed"))["reason"] == "closed_by_supervisor"
        await gail.send(type="close", request_id="c2", conversation_id=other)
        error = await gail.expect("error", request_id="c2")
        assert (error["code"], error["field"]) == ("closed", "conversation_id")
        await gail.send(type="close", request_id="c3", conversation_id="nope")
        assert (await gail.expect("error", request_id="c3"))["code"] == "unknown_conversation"


async def test_set_agent_status_as_the_admin_api_does(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        lead(gw, "tok-lin") as (lin, _),
    ):
        await lin.send(
            type="set_agent_status",
            request_id="s1",
            agent_id="alice",
            status="away",
            reason="coaching",
        )
        assert (await lin.expect("done", request_id="s1"))["action"] == "set_agent_status"
        status = await alice.expect("status")
        assert (status["status"], status["reason"]) == ("away", "coaching")
        api = next(a for a in (await admin_get(gw, "/api/agents"))["agents"] if a["id"] == "alice")
        assert (api["status"], api["status_reason"]) == ("away", "coaching")
        # Without a reason: the admin API's own.
        await lin.send(type="set_agent_status", request_id="s2", agent_id="alice", status="lunch")
        await lin.expect("done", request_id="s2")
        assert (await alice.expect("status", status="lunch"))["reason"] == "set_by_supervisor"
        await lin.send(type="set_agent_status", request_id="s3", agent_id="alice", status="nap")
        error = await lin.expect("error", request_id="s3")
        assert (error["code"], error["field"]) == ("bad_status", "status")
        await lin.send(type="set_agent_status", request_id="s4", agent_id="zed", status="away")
        error = await lin.expect("error", request_id="s4")
        assert (error["code"], error["field"]) == ("unknown_agent", "agent_id")


async def test_actions_outside_the_leads_queues_are_refused(tenant, redis_url):
    async with (
        centre(tenant, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        customer(gw) as shopper,
        customer(gw) as payer,
        lead(gw, "tok-gail") as (gail, _),
    ):
        billing = await say(payer, "my invoice is wrong")
        await shopper.send(type="message", text="hello")
        general = await accept_offer(alice)
        refusals = [
            (dict(type="close", conversation_id=billing), "conversation_id"),
            (dict(type="transfer", conversation_id=billing, to_agent="alice"), "conversation_id"),
            (dict(type="transfer", conversation_id=general, to_queue="billing"), "to_queue"),
            (dict(type="transfer", conversation_id=general, to_agent="bob"), "to_agent"),
            (dict(type="set_agent_status", agent_id="bob", status="away"), "agent_id"),
        ]
        for n, (frame, field) in enumerate(refusals):
            await gail.send(request_id=f"r{n}", **frame)
            error = await gail.expect("error", request_id=f"r{n}")
            assert (error["code"], error["field"]) == ("out_of_scope", field), frame
        # Nothing happened: the billing conversation still waits, alice still holds hers.
        await gail.send(type="ping")
        await gail.expect("pong")
        assert not [f for f in gail.frames if f["type"] == "done"]
        queues = {q["name"]: q for q in (await admin_get(gw, "/api/queues"))["queues"]}
        assert queues["billing"]["depth"] == 1
        agents = {a["id"]: a for a in (await admin_get(gw, "/api/agents"))["agents"]}
        assert agents["alice"]["conversations"] == [general]
