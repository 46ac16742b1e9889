"""The webhooks' Lua scripts declare their KEYS and ARGV like the router's: each header names
its contract's entries in order, and every script has a contract."""

from __future__ import annotations

from importlib.resources import files

import pytest

from gateway.events.store import CONTRACTS, WebhookStore
from presence.lua import header_of, read_header, script_names


def test_every_webhook_script_has_a_contract():
    assert script_names("gateway.events") == sorted(c.name for c in CONTRACTS)


@pytest.mark.parametrize("contract", CONTRACTS, ids=[c.name for c in CONTRACTS])
def test_the_header_names_the_contracts_keys_and_args_in_order(contract):
    source = files("gateway.events").joinpath("lua", f"{contract.name}.lua").read_text("utf-8")
    assert read_header(source) == header_of(contract)


async def test_an_event_trimmed_while_pending_is_forgotten_when_claimed(redis, tenant):
    store = WebhookStore(redis, tenant, "crm", "node-1")
    await store.ensure_group()
    k = store.keys
    await redis.xadd(k.events, {"type": "message_in", "conversation_id": "c1", "data": "{}"})
    (event,) = await store.read_new(10, ["*"])
    assert await store.touch([event]) == ["go"]
    assert await redis.zcard(k.unacked) == 1
    await redis.xtrim(k.events, maxlen=0)  # the stream kept less than the receiver was down
    other = WebhookStore(redis, tenant, "crm", "node-2")
    assert await other.claim_idle(0, 10) == []
    assert await redis.zcard(k.unacked) == 0
    assert await store.touch([event]) == ["lost"]
    assert await store.lag() == 0
