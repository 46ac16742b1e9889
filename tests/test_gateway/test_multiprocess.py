"""Three gateway processes on one Redis, 200 conversations arriving at once, agents who
accept, decline or ignore offers at random: no capacity overrun, no double offer, all served."""

from __future__ import annotations

import asyncio
import json
import random

import redis.asyncio as aioredis
from harness import Client, GatewayProcess, connect

AGENTS = ["a0", "a1", "a2", "a3"]
CAPACITY = 3
CONVERSATIONS = 200
# How much earlier than the agent's clock the gateway may expire an offer: the offer frame
# left the gateway before the agent read it, and on a busy machine (three gateways, Redis
# and this test on two cores) a frame may wait that long to be read.
EXPIRY_SLACK_S = 0.5

CONFIG = (
    "".join(
        f'[[agents]]\nid = "{a}"\ntoken = "tok-{a}"\ncapacity = {{ webchat = {CAPACITY} }}\n\n'
        for a in AGENTS
    )
    + """
[routing]
offer_timeout_s = 1.0
decline_cooldown_s = 0.0
sweep_interval_s = 0.05
missed_offers_before_away = 0

[webchat]
messages_per_minute = 0
new_visitors_per_minute = 0
"""
)


class Referee:
    """What each agent sees, in the order their socket delivers it, and what Redis holds.
    (Across agents the frames travel different sockets, so "at once" is judged in Redis.)"""

    def __init__(self) -> None:
        # conversation -> the loop time its offer expires, or None once accepted
        self.held: dict[str, dict[str, float | None]] = {a: {} for a in AGENTS}
        self.served: set[str] = set()
        self.violations: list[str] = []

    def offer(self, agent: str, conversation: str, expires_in_s: float) -> None:
        now = asyncio.get_running_loop().time()
        held = self.held[agent]
        # An expired offer's offer_revoked comes from the process that expired it, and may
        # arrive after a new offer another process made with the freed capacity: an offer
        # is void once expires_in_s has passed (docs/protocol.md).
        for other, deadline in list(held.items()):
            if deadline is not None and deadline <= now:
                del held[other]
        held[conversation] = now + expires_in_s - EXPIRY_SLACK_S
        if len(held) > CAPACITY:
            self.violations.append(f"{agent} holds {len(held)} > {CAPACITY}")

    def accept(self, agent: str, conversation: str) -> None:
        self.held[agent][conversation] = None

    def release(self, agent: str, conversation: str) -> None:
        self.held[agent].pop(conversation, None)


async def work(client: Client, agent: str, referee: Referee, rng: random.Random) -> None:
    while True:
        frame = json.loads(await client.ws.recv())
        kind = frame["type"]
        if kind == "offer_revoked":
            referee.release(agent, frame["offer_id"].rsplit(".", 1)[0])
        if kind != "offer":
            continue
        conversation = frame["conversation"]["id"]
        referee.offer(agent, conversation, frame["expires_in_s"])
        roll = rng.random()
        if roll < 0.1:
            continue  # ignored: the offer times out and moves on
        if roll < 0.3:
            referee.release(agent, conversation)
            await client.send(type="decline", offer_id=frame["offer_id"])
            continue
        referee.accept(agent, conversation)
        await client.send(type="accept", offer_id=frame["offer_id"])
        await client.send(
            type="reply", conversation_id=conversation, text="hi", client_msg_id=conversation
        )
        referee.served.add(conversation)
        referee.release(agent, conversation)
        await client.send(type="close", conversation_id=conversation)


async def watch_redis(redis_url: str, tenant: str, referee: Referee, stop: asyncio.Event) -> None:
    """Sample the routing state throughout: loads within capacity, one offer at most per
    conversation, never offered and assigned at once."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    prefix = f"zt:{{{tenant}}}:"
    try:
        while not stop.is_set():
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(prefix + "agent:load")
                pipe.hgetall(prefix + "offers")
                pipe.hgetall(prefix + "conv:agent")
                loads, offers, holders = await pipe.execute()
            for field, value in loads.items():
                if not field.endswith("|*") and not 0 <= int(value) <= CAPACITY:
                    referee.violations.append(f"load {field} = {value}")
            offered = [json.loads(v)["c"] for v in offers.values()]
            for conversation in {c for c in offered if offered.count(c) > 1}:
                referee.violations.append(f"{conversation} has two pending offers")
            for conversation in set(offered) & set(holders):
                referee.violations.append(f"{conversation} offered while assigned")
            await asyncio.sleep(0.02)  # a sampling rate, not synchronisation
    finally:
        await client.aclose()


async def test_three_processes_two_hundred_conversations(tmp_path, tenant, redis_url):
    nodes = [GatewayProcess(tmp_path, tenant, redis_url, f"node-{i}", CONFIG) for i in range(3)]
    referee = Referee()
    rng = random.Random(42)
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(node.ready() for node in nodes))
        agents = []
        for i, agent in enumerate(AGENTS):
            cm = connect(nodes[i % 3].ws_url("/agent/ws"))
            client = await cm.__aenter__()
            await client.send(type="hello", token=f"tok-{agent}", protocol=1)
            await client.expect("welcome")
            agents.append((cm, client, agent))
        workers = [asyncio.create_task(work(c, a, referee, rng)) for _, c, a in agents]
        watcher = asyncio.create_task(watch_redis(redis_url, tenant, referee, stop))

        async def one_customer(i: int) -> str:
            async with connect(nodes[i % 3].ws_url("/webchat/ws")) as visitor:
                await visitor.send(type="hello")
                await visitor.expect("welcome")
                await visitor.send(type="message", text=f"customer {i}")
                echo = await visitor.expect("message")
                await visitor.expect("closed", timeout=90)
                return echo["conversation_id"]

        conversations = await asyncio.wait_for(
            asyncio.gather(*(one_customer(i) for i in range(CONVERSATIONS))), timeout=120
        )
        stop.set()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, watcher, return_exceptions=True)
        for cm, _, _ in agents:
            await cm.__aexit__(None, None, None)

        assert referee.violations == []
        assert len(set(conversations)) == CONVERSATIONS
        assert referee.served == set(conversations)
        for node in nodes:
            assert await node.stop() == 0
    finally:
        stop.set()
        for node in nodes:
            node.kill()
