"""The client tests' fixture, a scripted gateway (fake_gateway.py) on a real socket, and
their `slow` marker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from fake_gateway import FakeGateway


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes tens of seconds (a virtualenv is built)")


@pytest.fixture
async def gateway() -> AsyncIterator[FakeGateway]:
    gw = FakeGateway()
    server = TestServer(gw.app, host="127.0.0.1", port=0)
    await server.start_server()
    gw.url = str(server.make_url("/agent/ws")).replace("http://", "ws://", 1)
    yield gw
    await server.close()
