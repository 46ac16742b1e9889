"""Fixtures of the review channel's tests: the fake feed server on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from reviews_fake_feed import FakeFeedServer


@pytest_asyncio.fixture
async def feed_server() -> AsyncIterator[FakeFeedServer]:
    server = FakeFeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
