"""The in-memory fake adapter, and finding adapters through the registry (the fake is the
simplest registered adapter)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import uuid

import pytest

from adapters import registry
from adapters.contract import Adapter, ConversationEvent, CustomerRef, DeliveryError, Outbound
from adapters.fake import FakeAdapter, FakeConfig
from adapters.testing import MemoryHost
from adapters.webchat import WebChatConfig


def outbound(text: str) -> Outbound:
    return Outbound(
        channel="fake",
        account="default",
        conversation_id="c1",
        customer=CustomerRef(id="cust"),
        message_id=uuid.uuid4().hex,
        text=text,
    )


@pytest.fixture
def host() -> MemoryHost:
    return MemoryHost()


@pytest.fixture
def fake(host: MemoryHost) -> FakeAdapter:
    return FakeAdapter(FakeConfig(account="shop"), host)


async def test_receive_ingests_through_the_host(fake: FakeAdapter, host: MemoryHost) -> None:
    result = await fake.receive("hello", customer_id="cust", customer_name="Ann")
    assert result.message.text == "hello" and result.queue_position == 1
    [inbound] = host.ingested
    assert (inbound.channel, inbound.account, inbound.customer.name) == ("fake", "shop", "Ann")
    again = await fake.receive("hello", customer_id="cust", external_id=inbound.external_id)
    assert again.duplicate and len(host.ingested) == 1


async def test_next_sent_returns_each_send_once_in_order(fake: FakeAdapter) -> None:
    await fake.send(outbound("early"))  # before anyone waits: not missed
    waiter = asyncio.create_task(fake.next_sent())
    assert (await waiter).text == "early"
    waiter = asyncio.create_task(fake.next_sent())
    await fake.send(outbound("late"))
    assert (await waiter).text == "late"
    assert [o.text for o in fake.sent] == ["early", "late"]


async def test_next_sent_times_out(fake: FakeAdapter) -> None:
    with pytest.raises(TimeoutError, match="no outbound message"):
        await fake.next_sent(timeout=0.05)


async def test_fail_next_send(fake: FakeAdapter) -> None:
    fake.fail_next_send("45015", "window closed", retryable=True)
    with pytest.raises(DeliveryError) as failed:
        await fake.send(outbound("refused"))
    assert (failed.value.code, failed.value.retryable) == ("45015", True)
    await fake.send(outbound("accepted"))  # only the next one fails
    assert [o.text for o in fake.sent] == ["accepted"]
    assert [(o.text, e.code) for o, e in fake.failed] == [("refused", "45015")]


async def test_notify_records_events(fake: FakeAdapter) -> None:
    event = ConversationEvent(
        kind="agent_joined",
        channel="fake",
        account="shop",
        conversation_id="c1",
        customer=CustomerRef(id="cust"),
        agent_name="Alice",
    )
    await fake.notify(event)
    assert await fake.next_event() == event and fake.events == [event]


async def test_lifecycle_and_readiness(fake: FakeAdapter) -> None:
    await fake.start()
    assert fake.started and await fake.ready()
    fake.set_ready(False)
    assert not await fake.ready()
    fake.set_ready(True)
    await fake.aclose()
    assert fake.closed and not await fake.ready()


# The registry.


def test_available_lists_entry_points_without_importing() -> None:
    found = registry.available()
    assert found["fake"].value == "adapters.fake:FakeAdapter"
    assert found["webchat"].value == "adapters.webchat:WebChatAdapter"
    assert all(isinstance(ep, importlib.metadata.EntryPoint) for ep in found.values())


def test_load_and_config_types() -> None:
    assert registry.load("fake") is FakeAdapter
    types = registry.config_types(["webchat", "fake", "nonesuch"])
    assert types == {"webchat": WebChatConfig, "fake": FakeConfig}


class OtherFake(FakeAdapter):
    name = "other"


def test_extra_classes_need_no_entry_point() -> None:
    extra = {"other": OtherFake}
    assert registry.load("other", extra=extra) is OtherFake
    assert registry.config_types(["other"], extra=extra) == {"other": FakeConfig}
    assert "other" in registry.names(extra) and "other" not in registry.names()
    with pytest.raises(registry.AdapterLoadError, match="no adapter named 'other'"):
        registry.load("other")


class Abstract(Adapter[FakeConfig]):
    name = "abstract"
    Config = FakeConfig


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (object, "not a subclass"),
        (Abstract, "abstract; it does not implement send"),
        (FakeAdapter, "class name attribute is 'fake', expected 'bad'"),
    ],
)
def test_load_refuses_what_is_not_an_adapter(obj: object, problem: str) -> None:
    with pytest.raises(registry.AdapterLoadError, match=problem):
        registry.load("bad", extra={"bad": obj})  # type: ignore[dict-item]


def test_a_broken_entry_point_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="adapters.no_such_module:Thing", group=registry.GROUP
    )
    installed = {"broken": broken, "fake": registry.available()["fake"]}
    monkeypatch.setattr(registry, "available", lambda group=registry.GROUP: installed)
    # Not configured, not imported: the broken one costs nothing until someone asks for it.
    assert registry.config_types(["fake"]) == {"fake": FakeConfig}
    with pytest.raises(registry.AdapterLoadError) as failed:
        registry.load("broken")
    assert "adapters.no_such_module:Thing" in str(failed.value)
    assert "failed to import" in str(failed.value)
