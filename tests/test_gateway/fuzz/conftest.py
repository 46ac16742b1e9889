"""The fuzz suite's gateway: web chat, WeChat (a safe, a compatible and a plaintext
account, against the WeChat tests' fake platform), a review feed with a webhook, the admin
API, and agents; and the check that its log holds no traceback and no error."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from fuzz_inputs import ADMIN_TOKEN, REVIEW_SECRET
from harness import RunningGateway, agent, make_config, running

# The WeChat channel's test helpers (its fake platform, the accounts' credentials).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test_adapters" / "wechat"))

from fake_wechat_api import FakeWeChat
from wechat_helpers import APP_ID, APP_SECRET, PLAIN_APP_ID, PLAIN_SECRET, wechat_table


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = FakeWeChat()
    server.add_app(APP_ID, APP_SECRET)
    server.add_app(PLAIN_APP_ID, PLAIN_SECRET)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def gateway(tenant: str, redis_url: str, fake: FakeWeChat) -> AsyncIterator[RunningGateway]:
    wechat = wechat_table(fake)
    wechat.pop("kf")
    config = make_config(
        tenant,
        admin={"token": ADMIN_TOKEN},
        agents=[
            agent("alice") | {"capacity": {"webchat": 5, "wechat": 5}},
            agent("carol", capacity=200),
        ],
        queues=[{"name": "general"}],
        wechat=wechat,
        reviews={"feeds": [{"name": "shop", "webhook_secret": REVIEW_SECRET}]},
    )
    async with running(config, redis_url) as gw:
        yield gw


@pytest.fixture(autouse=True)
def clean_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """0 tracebacks and 0 errors in the gateway's log while it is fuzzed."""
    caplog.set_level(logging.INFO)
    yield
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [f"{r.name}: {r.getMessage()}" for r in noisy[:5]]
