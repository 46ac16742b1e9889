"""Access tokens: the stable-token endpoint, cached in Redis, refreshed ahead of expiry,
single-flight under a Redis lock and shared by every gateway process."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from harness import running
from helpers import wait_until
from wechat_helpers import APP_ID, wechat_config

from adapters.contract import CustomerRef, DeliveryError, Outbound
from adapters.wechat import WeChatAdapter
from adapters.wechat.tokens import TokenCache, TokenUnavailable


def adapter_of(gw) -> WeChatAdapter:
    adapter = gw.services.adapters["wechat"]
    assert isinstance(adapter, WeChatAdapter)
    return adapter


async def test_two_gateway_processes_share_one_token_and_never_fetch_it_twice_at_once(
    tenant, fake, redis_url
):
    config = wechat_config(tenant, fake)
    async with running(config, redis_url) as one, running(config, redis_url) as two:
        first, second = adapter_of(one), adapter_of(two)
        assert first.api.session is not second.api.session
        fake.hold_tokens = asyncio.Event()
        reads = 0
        cache_two = second.oa_tokens("main")
        real_read = cache_two._read

        async def counting_read():
            nonlocal reads
            reads += 1
            return await real_read()

        cache_two._read = counting_read  # type: ignore[method-assign]
        task_one = asyncio.create_task(first.oa_tokens("main").get())
        await wait_until(lambda: fake.token_waiting == 1, message="the first fetch in flight")
        task_two = asyncio.create_task(cache_two.get())
        # The second process found the lock taken and waits for the token (reads again).
        await wait_until(lambda: reads >= 2, message="the second process waiting")
        assert not task_two.done() and fake.calls["stable_token"] == 1
        fake.hold_tokens.set()
        token_one, token_two = await asyncio.gather(task_one, task_two)
        assert token_one == token_two
        assert fake.calls["stable_token"] == 1

        # Both processes send with it, concurrently: still one fetch.
        def outbound(n: int) -> Outbound:
            return Outbound(
                channel="wechat",
                account="main",
                conversation_id=f"c{n}",
                customer=CustomerRef(id=f"o-{n}"),
                message_id=f"m{n}",
                text="hi",
            )

        fake.hold_tokens = None
        for n in range(6):
            await first.windows.record("main", f"o-{n}", f"c{n}", "message", now_ms())
        await asyncio.gather(*((first if n % 2 else second).send(outbound(n)) for n in range(6)))
        assert len(fake.sent) == 6
        assert fake.calls["stable_token"] == 1


def now_ms() -> int:
    return int(time.time() * 1000)


class Stub:
    """A token endpoint: counts calls, can be held, hands out numbered tokens."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.gate: asyncio.Event | None = None
        self.numbers = itertools.count(1)
        self.same = False

    async def fetch(self, force: bool) -> tuple[str, float]:
        self.calls.append(force)
        if self.gate is not None:
            await self.gate.wait()
        if self.same and not force:
            return "tok-same", 7200.0
        return f"tok-{next(self.numbers)}", 7200.0


@pytest.fixture
def clock():
    now = [1_000_000.0]
    return now


def cache(redis, tenant, stub: Stub, clock, ahead: float = 300.0) -> TokenCache:
    return TokenCache(
        redis,
        f"zt:{{{tenant}}}:ad:wechat:token:test",
        stub.fetch,
        refresh_ahead_s=ahead,
        clock=lambda: clock[0],
    )


async def test_the_token_is_cached_and_refreshed_ahead_of_expiry(redis, tenant, clock):
    stub = Stub()
    tokens = cache(redis, tenant, stub, clock)
    assert await tokens.get() == "tok-1"
    assert await tokens.get() == "tok-1"
    assert stub.calls == [False]
    clock[0] += 7200 - 299  # inside the last 300 s: refreshed, while still valid
    assert await tokens.get() == "tok-2"
    assert stub.calls == [False, False]
    assert await tokens.get() == "tok-2"
    assert len(stub.calls) == 2


async def test_many_callers_in_two_processes_fetch_once(redis, tenant, clock):
    stub = Stub()
    stub.gate = asyncio.Event()
    one, two = cache(redis, tenant, stub, clock), cache(redis, tenant, stub, clock)
    tasks = [asyncio.create_task((one if i % 2 else two).get()) for i in range(20)]
    await wait_until(lambda: len(stub.calls) == 1)
    stub.gate.set()
    assert set(await asyncio.gather(*tasks)) == {"tok-1"}
    assert stub.calls == [False]


async def test_a_due_refresh_in_progress_elsewhere_does_not_block_a_valid_token(
    redis, tenant, clock
):
    stub = Stub()
    one, two = cache(redis, tenant, stub, clock), cache(redis, tenant, stub, clock)
    assert await one.get() == "tok-1"
    clock[0] += 7200 - 100
    stub.gate = asyncio.Event()
    refreshing = asyncio.create_task(one.get())
    await wait_until(lambda: len(stub.calls) == 2)
    assert await two.get() == "tok-1"  # still valid: used while the other refreshes
    stub.gate.set()
    assert await refreshing == "tok-2"


async def test_a_rejected_token_is_replaced_once_with_force_when_needed(redis, tenant, clock):
    stub = Stub()
    stub.same = True  # normal mode keeps handing out the token WeChat refused
    tokens = cache(redis, tenant, stub, clock)
    assert await tokens.get() == "tok-same"
    assert await tokens.rejected("tok-same") == "tok-1"
    assert stub.calls == [False, False, True]
    # Another process's rejection of the same old token uses the new one: no fetch.
    other = cache(redis, tenant, stub, clock)
    assert await other.rejected("tok-same") == "tok-1"
    assert len(stub.calls) == 3


async def test_a_failing_fetch_is_an_error_not_a_hang(redis, tenant, clock):
    async def broken(force: bool) -> tuple[str, float]:
        raise TokenUnavailable("40125: invalid appsecret")

    tokens = TokenCache(redis, f"zt:{{{tenant}}}:ad:wechat:token:x", broken, refresh_ahead_s=300)
    with pytest.raises(TokenUnavailable):
        await tokens.get()
    # The lock was released: the next attempt fetches again at once.
    with pytest.raises(TokenUnavailable):
        await asyncio.wait_for(tokens.get(), timeout=2)


async def test_a_wrong_secret_is_a_clear_delivery_error(tenant, fake, redis_url):
    fake.apps[APP_ID] = "rotated-secret"
    config = wechat_config(tenant, fake)
    async with running(config, redis_url) as gw:
        adapter = adapter_of(gw)
        await adapter.windows.record("main", "o-1", "c1", "message", now_ms())
        outbound = Outbound(
            channel="wechat",
            account="main",
            conversation_id="c1",
            customer=CustomerRef(id="o-1"),
            message_id="m1",
            text="hi",
        )
        with pytest.raises(DeliveryError) as refused:
            await adapter.send(outbound)
        assert refused.value.code == "40125"
