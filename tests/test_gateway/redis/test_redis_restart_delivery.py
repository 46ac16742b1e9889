"""Live delivery across a Redis restart: two gateway processes on one persistent redis-server,
the agent on one, the web chat visitors on the other. Redis is restarted (same port, its
AOF kept) while the visitors write; every message acknowledged to a visitor must reach the
agent, live or in the fresh welcome the gateway sends once its node bus is back, and no
``message`` frame may come before its conversation's ``assigned`` (or a welcome listing it).

Conversations start on both sides of the restart: the two opened during the outage are
auto-accepted, and their ``assigned`` frames are what the node bus loses first."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from harness import Client, GatewayProcess, connect
from helpers import free_port, wait_until

from gateway.redis.embedded import RedisServer, find_redis_server

VISITORS = 4
BEFORE = 5  # messages the first two visitors send before the restart
MESSAGES = 10  # per visitor; 40 in all
ACK_TIMEOUT_S = 15.0
DELIVERY_TIMEOUT_S = 90.0

CONFIG = """
[[agents]]
id = "alice"
token = "tok-alice"
capacity = { webchat = 10 }
auto_accept = true

[webchat]
messages_per_minute = 0
new_visitors_per_minute = 0

# Fewer than the outage can lose of one conversation: the fresh welcome must reach back.
[routing]
recent_messages = 3
"""


def drain(process: GatewayProcess) -> list[str]:
    """Read the process's output as it comes (a full pipe would stop it), for the report."""
    lines: list[str] = []
    stream = process.process.stdout
    assert stream is not None
    threading.Thread(
        target=lambda: lines.extend(line.decode(errors="replace") for line in stream),
        daemon=True,
    ).start()
    return lines


class Agent:
    """Every frame alice's socket reads, in order, read by a task of its own."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.client.ws:
            self.frames.append(json.loads(raw))

    def seen(self) -> set[str]:
        """The ids of the messages shown: live, or in a welcome or an assigned."""
        ids: set[str] = set()
        for frame in self.frames:
            if frame["type"] == "message":
                ids.add(frame["message"]["id"])
            conversations = {
                "welcome": lambda f: f["conversations"],
                "assigned": lambda f: [f["conversation"]],
            }.get(frame["type"], lambda f: [])(frame)
            ids.update(m["id"] for c in conversations for m in c["messages"])
        return ids

    def orphans(self) -> list[dict[str, Any]]:
        """``message`` frames for a conversation the client was not told of at that point."""
        known: set[str] = set()
        found = []
        for frame in self.frames:
            kind = frame["type"]
            if kind == "welcome":
                known = {c["id"] for c in frame["conversations"]}
            elif kind == "assigned":
                known.add(frame["conversation"]["id"])
            elif kind == "closed":
                known.discard(frame["conversation_id"])
            elif kind == "message" and frame["conversation_id"] not in known:
                found.append(frame)
        return found


class Visitor:
    """One web chat visitor on node one, who sends each message until it is acknowledged
    (its echo), again with the same client_msg_id after an error or a dropped socket."""

    def __init__(self, process: GatewayProcess, name: str) -> None:
        self.process, self.name = process, name
        self.token: str | None = None
        self.acknowledged: list[str] = []  # message ids
        self.client: Client | None = None
        self._stack = contextlib.AsyncExitStack()

    async def open(self) -> None:
        await self._stack.aclose()
        self.client = await self._stack.enter_async_context(
            connect(self.process.ws_url("/webchat/ws"))
        )
        await self.client.send(type="hello", visitor_token=self.token)
        welcome = await self.client.expect("welcome", timeout=ACK_TIMEOUT_S)
        self.token = welcome["visitor_token"]

    async def close(self) -> None:
        await self._stack.aclose()

    async def say(self, number: int) -> None:
        cmid = f"{self.name}-{number}"
        for attempt in itertools.count():
            assert attempt < 200, f"{cmid} never acknowledged"
            try:
                if self.client is None:
                    await self.open()
                assert self.client is not None
                await self.client.send(type="message", text=cmid, client_msg_id=cmid)
                answer = await self.client.expect(
                    ("message", "error"), timeout=ACK_TIMEOUT_S, client_msg_id=cmid
                )
            except (OSError, TimeoutError, websockets.WebSocketException):
                self.client = None  # reconnect with the same visitor token
                await asyncio.sleep(0.2)  # a retry pace, not synchronisation
                continue
            if answer["type"] == "message":
                self.acknowledged.append(answer["message"]["id"])
                return
            assert answer["code"] == "unavailable", answer
            await asyncio.sleep(0.2)  # a retry pace while Redis is away

    async def say_all(self, numbers: range) -> None:
        for number in numbers:
            await self.say(number)


@contextlib.asynccontextmanager
async def redis_on(directory: Path, port: int) -> AsyncIterator[RedisServer]:
    server = RedisServer(data_dir=directory, port=port, persistent=True)
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
def redis_dir(tmp_path: Path) -> Path:
    if find_redis_server() is None:
        pytest.skip("redis-server not found: apt-get install redis-server")
    return tmp_path / "redis"


async def test_every_acknowledged_message_reaches_the_agent_across_a_restart(
    tmp_path, tenant, redis_dir
):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    first = RedisServer(data_dir=redis_dir, port=port, persistent=True)
    await asyncio.to_thread(first.start)
    one = GatewayProcess(tmp_path, tenant, url, "node-one", CONFIG)
    two = GatewayProcess(tmp_path, tenant, url, "node-two", CONFIG)
    logs = {"node-one": drain(one), "node-two": drain(two)}
    visitors = [Visitor(one, f"v{i}") for i in range(VISITORS)]
    agent: Agent | None = None
    try:
        await one.ready()
        await two.ready()
        async with connect(two.ws_url("/agent/ws")) as alice:
            await alice.send(type="hello", token="tok-alice", protocol=1)
            await alice.expect("welcome")
            agent = Agent(alice)
            for visitor in visitors:
                await visitor.open()
            await asyncio.gather(*(v.say_all(range(BEFORE)) for v in visitors[:2]))

            await asyncio.to_thread(first.stop)
            senders = [
                *(asyncio.create_task(v.say_all(range(BEFORE, MESSAGES))) for v in visitors[:2]),
                *(asyncio.create_task(v.say_all(range(MESSAGES))) for v in visitors[2:]),
            ]
            async with redis_on(redis_dir, port):
                await asyncio.wait_for(asyncio.gather(*senders), timeout=180)
                acknowledged = {m for v in visitors for m in v.acknowledged}
                assert len(acknowledged) == VISITORS * MESSAGES

                await wait_until(
                    lambda: acknowledged <= agent.seen(),
                    timeout=DELIVERY_TIMEOUT_S,
                    interval=0.1,
                    message="every acknowledged message at the agent",
                )
                assert agent.orphans() == []
                welcomes = [f for f in agent.frames if f["type"] == "welcome"]
                assert welcomes, "node two resynced alice after its bus came back"
                for visitor in visitors:
                    await visitor.close()
                agent.task.cancel()
                assert await one.stop() == 0
                assert await two.stop() == 0
    except BaseException:
        for node, lines in logs.items():
            print(f"--- {node}\n" + "".join(lines[-200:]))
        if agent is not None:
            missing = {m for v in visitors for m in v.acknowledged} - agent.seen()
            print("missing at the agent:", sorted(missing))
            print("frames:", [f["type"] for f in agent.frames])
        raise
    finally:
        if agent is not None:
            agent.task.cancel()
        for visitor in visitors:
            await visitor.close()
        one.kill()
        two.kill()
        await asyncio.to_thread(first.stop)
