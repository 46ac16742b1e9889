"""Two gateway processes on one Redis (two apps in this test process, each its own node on
the node bus): a lead signed in on one sees, live, what passes through the other."""

from __future__ import annotations

import contextlib

from harness import accept_offer, agent_client, customer, make_config, start_gateway
from helpers import wait_until
from supervisor_support import centre_tables, lead

from gateway.supervisors import session as supervisor_session


@contextlib.asynccontextmanager
async def two_processes(tenant, redis_url):
    config = make_config(tenant, **centre_tables())
    one = await start_gateway(config, redis_url)
    try:
        two = await start_gateway(make_config(tenant, **centre_tables()), redis_url)
        try:
            yield one, two
        finally:
            await two.stop()
    finally:
        await one.stop()


async def test_a_lead_on_one_process_sees_what_passes_through_another(
    tenant, redis_url, monkeypatch
):
    monkeypatch.setattr(supervisor_session, "REFRESH_S", 600.0)
    async with (
        two_processes(tenant, redis_url) as (one, two),
        agent_client(one, "alice") as alice,
        customer(one) as visitor,
        lead(two, "tok-lin") as (lin, _),
    ):
        await lin.expect("wallboard")
        await visitor.send(type="message", text="hello there")
        conversation_id = await accept_offer(alice)

        # The wallboard on process two follows the assignment made on process one.
        def alice_holds_it(frame):
            tile = next(a for a in frame["agents"] if a["id"] == "alice")
            return tile["conversations"] == [conversation_id]

        while not alice_holds_it(await lin.expect("wallboard")):
            pass

        await lin.send(type="watch", conversation_id=conversation_id)
        await lin.expect("watching", conversation_id=conversation_id)
        relay = one.services.switchboard.tap.remote
        await wait_until(
            lambda: conversation_id in relay._watched_at,
            message="process one heard of the watch",
        )
        await visitor.send(type="message", text="from process one")
        live = await lin.expect("message", conversation_id=conversation_id)
        assert live["message"]["text"] == "from process one"
        await alice.send(
            type="reply", conversation_id=conversation_id, text="answered", client_msg_id="r1"
        )
        reply = await lin.expect("message", conversation_id=conversation_id)
        assert (reply["message"]["direction"], reply["message"]["text"]) == ("out", "answered")
        await alice.send(type="close", conversation_id=conversation_id)
        assert (await lin.expect("closed", conversation_id=conversation_id))["reason"] == (
            "closed_by_agent"
        )
