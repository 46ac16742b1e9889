"""Durability across a restart, and two gateway processes sharing one Redis."""

from __future__ import annotations

from harness import GatewayProcess, agent, agent_client, connect, customer, make_config, running


async def test_restart_keeps_waiting_and_assigned_conversations(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice", capacity=1)])
    async with running(config, redis_url) as gw:
        async with (
            agent_client(gw, "alice") as alice,
            customer(gw) as first,
            customer(gw) as second,
        ):
            await first.send(type="message", text="assigned before the restart")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await second.send(type="message", text="waiting during the restart")
            await second.expect("queue", position=1)
            token = second.frames[0]["visitor_token"]
    assigned_id = offer["conversation"]["id"]

    async with running(config, redis_url) as gw:
        async with agent_client(gw, "alice") as alice:
            welcome = alice.frames[0]
            assert [c["id"] for c in welcome["conversations"]] == [assigned_id]
            assert welcome["conversations"][0]["messages"][0]["text"] == (
                "assigned before the restart"
            )
            await alice.send(type="close", conversation_id=assigned_id)
            offer = await alice.expect("offer")
            assert offer["conversation"]["messages"][0]["text"] == "waiting during the restart"
            async with customer(gw, visitor_token=token) as back:
                assert back.frames[0]["conversation_id"] == offer["conversation"]["id"]


ALICE = """
[[agents]]
id = "alice"
token = "tok-alice"
capacity = { webchat = 2 }

[webchat]
enabled = true
messages_per_minute = 0
new_visitors_per_minute = 0
"""


async def test_two_processes_customer_on_one_agent_on_the_other(tmp_path, tenant, redis_url):
    one = GatewayProcess(tmp_path, tenant, redis_url, "node-one", ALICE)
    two = GatewayProcess(tmp_path, tenant, redis_url, "node-two", ALICE)
    try:
        await one.ready()
        await two.ready()
        async with (
            connect(two.ws_url("/agent/ws")) as alice,
            connect(one.ws_url("/webchat/ws")) as visitor,
        ):
            await alice.send(type="hello", token="tok-alice", protocol=1)
            await alice.expect("welcome")
            await visitor.send(type="hello")
            await visitor.expect("welcome")
            await visitor.send(type="message", text="from node one")
            offer = await alice.expect("offer")
            conv = offer["conversation"]["id"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await visitor.expect("agent", name="Agent")
            await alice.send(
                type="reply", conversation_id=conv, text="from node two", client_msg_id="r1"
            )
            await alice.expect("reply_ack")
            reply = await visitor.expect("message", timeout=10)
            if reply["message"]["direction"] == "in":
                reply = await visitor.expect("message", timeout=10)
            assert reply["message"]["text"] == "from node two"
            await visitor.send(type="message", text="back to node two")
            follow = await alice.expect("message", conversation_id=conv)
            assert follow["message"]["text"] == "back to node two"
        assert await one.stop() == 0
        assert await two.stop() == 0
    finally:
        one.kill()
        two.kill()


async def test_a_connection_on_another_process_replaces_the_first_with_4409(
    tmp_path, tenant, redis_url
):
    one = GatewayProcess(tmp_path, tenant, redis_url, "node-one", ALICE)
    two = GatewayProcess(tmp_path, tenant, redis_url, "node-two", ALICE)
    try:
        await one.ready()
        await two.ready()
        async with connect(one.ws_url("/agent/ws")) as first:
            await first.send(type="hello", token="tok-alice", protocol=1)
            await first.expect("welcome")
            async with connect(two.ws_url("/agent/ws")) as second:
                await second.send(type="hello", token="tok-alice", protocol=1)
                await second.expect("welcome")
                assert await first.expect_closed() == 4409
                # Work now reaches alice on node two, whichever node the customer is on, and
                # the old socket's late goodbye on node one did not sign her out.
                async with connect(one.ws_url("/webchat/ws")) as visitor:
                    await visitor.send(type="hello")
                    await visitor.expect("welcome")
                    await visitor.send(type="message", text="who answers?")
                    offer = await second.expect("offer")
                    assert offer["conversation"]["messages"][0]["text"] == "who answers?"
        assert await one.stop() == 0
        assert await two.stop() == 0
    finally:
        one.kill()
        two.kill()
