"""Fixtures of the WeChat channel's tests: the fake platform, and the default config."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from fake_wechat_api import FakeWeChat
from wechat_helpers import (
    APP_ID,
    APP_SECRET,
    CORP_ID,
    CORP_SECRET,
    PLAIN_APP_ID,
    PLAIN_SECRET,
    wechat_config,
)


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeWeChat]:
    server = FakeWeChat()
    server.add_app(APP_ID, APP_SECRET)
    server.add_app(PLAIN_APP_ID, PLAIN_SECRET)
    server.add_corp(CORP_ID, CORP_SECRET)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def config(tenant: str, fake: FakeWeChat):
    return wechat_config(tenant, fake)
