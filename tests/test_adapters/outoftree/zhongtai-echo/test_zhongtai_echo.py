"""The echo adapter's own unit tests, as an integrator writes them: the adapter on the test
kit's in-memory host, its web app on a real aiohttp test server. No gateway, no Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from zhongtai_echo import EchoAdapter, EchoConfig

from adapters.testing import MemoryHost


@pytest.fixture
def host() -> MemoryHost:
    return MemoryHost()


@pytest.fixture
async def echo(host: MemoryHost) -> AsyncIterator[EchoAdapter]:
    adapter = EchoAdapter(EchoConfig(account="shop"), host)
    await adapter.start()
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def client(echo: EchoAdapter) -> AsyncIterator[TestClient]:
    root = web.Application()
    root.add_subapp("/echo/", echo.web_app())  # where the gateway mounts it
    async with TestClient(TestServer(root)) as test_client:
        yield test_client


async def test_a_message_in_is_ingested_once(client: TestClient, host: MemoryHost) -> None:
    message = {"id": "e1", "customer": "ann", "text": "where is my parcel?"}
    response = await client.post("/echo/in", json=message)
    assert response.status == 200
    accepted = await response.json()
    [inbound] = host.ingested
    assert (inbound.channel, inbound.account, inbound.external_id) == ("echo", "shop", "e1")
    assert (inbound.customer.id, inbound.text) == ("ann", "where is my parcel?")
    assert accepted["conversation_id"] == host.conversation("echo", "shop", "ann").id
    # The channel sends it again: one message.
    again = await (await client.post("/echo/in", json=message)).json()
    assert again["duplicate"] and again["message_id"] == accepted["message_id"]
    assert len(host.ingested) == 1


async def test_a_bad_message_is_refused_naming_the_field(
    client: TestClient, host: MemoryHost
) -> None:
    response = await client.post("/echo/in", json={"id": "e1", "text": "no customer"})
    assert response.status == 400 and "customer" in await response.text()
    assert (await client.post("/echo/in", data=b"{nope")).status == 400
    assert host.ingested == []


async def test_a_failed_store_is_an_error_for_the_channel_to_retry(
    client: TestClient, host: MemoryHost
) -> None:
    host.fail("ingest", ConnectionError("Redis went away"), times=1)
    message = {"id": "e1", "customer": "ann", "text": "hello"}
    assert (await client.post("/echo/in", json=message)).status == 500
    assert (await client.post("/echo/in", json=message)).status == 200
    assert len(host.ingested) == 1


async def test_a_reply_is_listed_out(
    client: TestClient, echo: EchoAdapter, host: MemoryHost
) -> None:
    await client.post("/echo/in", json={"id": "e1", "customer": "ann", "text": "hi"})
    conversation = host.conversation("echo", "shop", "ann")
    await echo.send(host.reply(conversation.id, "hello Ann", agent_name="Alice"))
    replies = await (await client.get("/echo/out")).json()
    assert replies == [
        {
            "conversation_id": conversation.id,
            "customer": "ann",
            "text": "hello Ann",
            "agent_name": "Alice",
        }
    ]
