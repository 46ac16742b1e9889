"""Two real gateway processes (`zhongtai serve`) on the suite's Redis, with the same Official
Account: their agents reply at the same moment, so both processes need the access token at
once. One of them fetches it from the stable-token endpoint and the other waits for it, then
both send with it; when WeChat refuses it (expired: 42001, invalidated: 40001) the refresh is
again one fetch shared by both processes.

The fake platform holds the token endpoint until the test has seen the second process find
the lock taken: it tried the Redis lock twice (a process that gets the lock does not try
again), which the test watches with Redis MONITOR. With a broken lock the second process
fetches too while the first fetch is held, and the count of fetches says so."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from fake_wechat_api import FakeWeChat, oa_callback, oa_xml, with_query
from harness import FRAME_TIMEOUT_S, Client, GatewayProcess, connect
from helpers import wait_until
from wechat_helpers import AES_KEY, APP_ID, APP_SECRET, TOKEN

pytestmark = pytest.mark.timeout(120)

AGENTS = ("alice", "bob")
_msg_ids = itertools.count(int(time.time() * 1000))


def gateway_toml(fake: FakeWeChat) -> str:
    agents = "".join(
        f'[[agents]]\nid = "{a}"\ntoken = "tok-{a}"\ncapacity = {{ wechat = 1 }}\n'
        "auto_accept = true\n\n"
        for a in AGENTS
    )
    return (
        agents
        + f"""
[wechat]
retry_backoff_s = 0.01
request_timeout_s = 10.0

[[wechat.accounts]]
name = "main"
app_id = "{APP_ID}"
app_secret = "{APP_SECRET}"
token = "{TOKEN}"
aes_key = "{AES_KEY}"
api_base = "{fake.mp_base}"
"""
    )


async def customer_writes(node: GatewayProcess, openid: str) -> None:
    """WeChat pushes a follower's text to this process (safe mode), as the platform does."""
    xml = oa_xml(openid, "text", Content=f"hello from {openid}", MsgId=next(_msg_ids))
    query, body = oa_callback(TOKEN, xml, aes_key=AES_KEY, app_id=APP_ID)
    url = with_query(f"http://127.0.0.1:{node.port}/wechat/main", query)
    async with aiohttp.ClientSession() as http, http.post(url, data=body) as response:
        assert (response.status, await response.text()) == (200, "success")


async def outcome(agent: Client, client_msg_id: str) -> dict[str, Any]:
    """The reply_ack or error frame answering the reply with this client_msg_id."""
    return await agent.expect(("reply_ack", "error"), client_msg_id=client_msg_id)


def release_tokens(fake: FakeWeChat) -> None:
    if fake.hold_tokens is not None:
        fake.hold_tokens.set()


@contextlib.asynccontextmanager
async def lock_attempts(redis_url: str, lock_key: str) -> AsyncIterator[list[str]]:
    """Every SET NX on lock_key, by any process, while the block runs (Redis MONITOR)."""
    client = aioredis.Redis.from_url(redis_url, protocol=2)
    attempts: list[str] = []
    watching = asyncio.Event()

    async def watch() -> None:
        async with client.monitor() as monitor:
            watching.set()
            async for command in monitor.listen():
                parts = command["command"].split(" ")
                if len(parts) > 2 and parts[0].upper() == "SET" and parts[1] == lock_key:
                    if "NX" in (p.upper() for p in parts[3:]):
                        attempts.append(command["command"])

    task = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(watching.wait(), timeout=FRAME_TIMEOUT_S)
        yield attempts
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()


async def test_two_gateway_processes_fetch_one_token_and_share_its_refresh(
    tmp_path, tenant, redis_url, fake, redis
):
    lock_key = f"zt:{{{tenant}}}:ad:wechat:token:{APP_ID}:lock"
    toml = gateway_toml(fake)
    nodes = [GatewayProcess(tmp_path, tenant, redis_url, f"wx-{i}", toml) for i in (1, 2)]
    try:
        await asyncio.gather(*(node.ready() for node in nodes))
        async with contextlib.AsyncExitStack() as stack:
            # alice on the first process, bob on the second, one WeChat conversation each
            # (capacity 1 and auto-accept: o-2 can only go to bob).
            agents: dict[str, Client] = {}
            conversations: dict[str, str] = {}
            for node, name, openid in zip(nodes, AGENTS, ("o-1", "o-2"), strict=True):
                agent = await stack.enter_async_context(connect(node.ws_url("/agent/ws")))
                await agent.send(type="hello", token=f"tok-{name}", protocol=1)
                await agent.expect("welcome")
                await customer_writes(node, openid)
                assigned = await agent.expect("assigned")
                assert assigned["conversation"]["customer"]["id"] == openid
                agents[name] = agent
                conversations[name] = assigned["conversation"]["id"]
            # On failure, held token requests are let go before the agents hang up.
            stack.callback(release_tokens, fake)
            # Nothing needed a token so far: the replies are the first to.
            assert fake.calls["stable_token"] == 0

            async def both_reply(round_: str, refuse: Callable[[], None] | None) -> str:
                """alice and bob reply at once while the token endpoint is held; the token
                both sends used, after checking that it was fetched exactly once."""
                fetched = fake.calls["stable_token"]
                old = fake.current.get(("stable", APP_ID))
                sent, requests = len(fake.sent), len(fake.requests)
                if refuse is not None:
                    refuse()  # WeChat now refuses the token both processes have cached
                fake.hold_tokens = asyncio.Event()
                async with lock_attempts(redis_url, lock_key) as attempts:
                    for name in AGENTS:
                        await agents[name].send(
                            type="reply",
                            conversation_id=conversations[name],
                            text=f"{round_} from {name}",
                            client_msg_id=f"{round_}-{name}",
                        )

                    def second_process_waits() -> bool:
                        # One fetch is held at the fake, and the lock was tried three times:
                        # the fetcher takes it at its first try, so the other process tried
                        # (at least) twice, refused. A broken lock shows as a second fetch.
                        if fake.calls["stable_token"] > fetched + 1:
                            return True
                        return fake.token_waiting == 1 and len(attempts) >= 3

                    await wait_until(
                        second_process_waits,
                        timeout=15,
                        message=f"{round_}: both processes after the token",
                    )
                    assert fake.calls["stable_token"] == fetched + 1, (
                        f"{round_}: a second fetch while the first was in flight"
                    )
                    assert fake.token_waiting == 1
                    fake.hold_tokens.set()
                    acks = await asyncio.gather(
                        *(outcome(agents[n], f"{round_}-{n}") for n in AGENTS)
                    )
                assert [a["type"] for a in acks] == ["reply_ack", "reply_ack"], acks
                # One fetch in all, shared by both processes, and it was a new token.
                assert fake.calls["stable_token"] == fetched + 1
                token = fake.current[("stable", APP_ID)]
                assert token != old
                # Both replies reached the customer-service API, both with that token.
                assert {m["touser"]: m["text"]["content"] for m in fake.sent[sent:]} == {
                    "o-1": f"{round_} from alice",
                    "o-2": f"{round_} from bob",
                }
                assert fake.sent_tokens[sent:] == [token, token]
                sends = [t for e, t in fake.requests[requests:] if e == "custom_send"]
                if refuse is None:
                    assert sends == [token, token]
                else:
                    # Each process sent once with the refused token, then with the new one.
                    assert sends == [old, old, token, token]
                assert await redis.exists(lock_key) == 0
                return token

            first = await both_reply("first", None)
            expired = await both_reply("expired", fake.expire_tokens)  # 42001
            invalid = await both_reply("invalidated", fake.invalidate_tokens)  # 40001
            assert len({first, expired, invalid}) == 3
            assert fake.calls["stable_token"] == 3
        for node in nodes:
            assert await node.stop() == 0
    finally:
        release_tokens(fake)
        for node in nodes:
            node.kill()
