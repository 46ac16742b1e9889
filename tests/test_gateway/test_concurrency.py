"""Many customers at once against few agents: capacity holds, no double offers, all served."""

from __future__ import annotations

import asyncio
import random

from harness import Client, agent, agent_client, customer, make_config, running

CUSTOMERS = 50
CAPACITY = 2


async def work(
    client: Client,
    agent_id: str,
    held: dict[str, set[str]],
    offered: dict[str, str],
    violations: list[str],
    served: set[str],
    rng: random.Random,
) -> None:
    """Accept (or now and then decline) every offer, reply, close; record what we see."""
    mine = held[agent_id]
    while True:
        frame = await client.expect("offer", timeout=30)
        conv = frame["conversation"]["id"]
        if conv in offered and offered[conv] != agent_id:
            violations.append(f"{conv} offered to {offered[conv]} and {agent_id} at once")
        offered[conv] = agent_id
        mine.add(conv)
        if len(mine) > CAPACITY:
            violations.append(f"{agent_id} holds {len(mine)} > {CAPACITY}")
        if rng.random() < 0.2:
            await client.send(type="decline", offer_id=frame["offer_id"])
            del offered[conv]
            mine.discard(conv)
            continue
        await client.send(type="accept", offer_id=frame["offer_id"])
        await client.expect("assigned")
        await client.send(type="reply", conversation_id=conv, text="hi", client_msg_id=conv)
        await client.expect("reply_ack", client_msg_id=conv)
        # Forget the conversation before closing: the next offer can come as soon as the
        # gateway frees the capacity, before the closed frame is read.
        mine.discard(conv)
        del offered[conv]
        served.add(conv)
        await client.send(type="close", conversation_id=conv)


async def test_fifty_customers_two_agents_capacity_two(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice", capacity=CAPACITY), agent("bob", capacity=CAPACITY)],
        routing={"decline_cooldown_s": 0.0},
    )
    rng = random.Random(7)
    held: dict[str, set[str]] = {"alice": set(), "bob": set()}
    offered: dict[str, str] = {}
    violations: list[str] = []
    served: set[str] = set()
    async with (
        running(config, redis_url) as gw,
        agent_client(gw, "alice") as alice,
        agent_client(gw, "bob") as bob,
    ):
        workers = [
            asyncio.create_task(work(client, name, held, offered, violations, served, rng))
            for client, name in ((alice, "alice"), (bob, "bob"))
        ]

        async def one_customer(i: int) -> str:
            async with customer(gw) as visitor:
                await visitor.send(type="message", text=f"customer {i}")
                echo = await visitor.expect("message")
                reply = await visitor.expect("message", timeout=60)
                assert reply["message"]["direction"] == "out"
                await visitor.expect("closed", timeout=60)
                return echo["conversation_id"]

        try:
            conversations = await asyncio.wait_for(
                asyncio.gather(*(one_customer(i) for i in range(CUSTOMERS))), timeout=90
            )
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        assert violations == []
        assert len(set(conversations)) == CUSTOMERS
        assert served == set(conversations)
        loads = await gw.services.presence.loads("alice")
        assert loads.get("webchat", 0) == 0
