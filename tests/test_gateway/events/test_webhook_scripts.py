"""The webhooks' Lua scripts declare their KEYS and ARGV like the router's: each header names
its contract's entries in order, and every script has a contract."""

from __future__ import annotations

from importlib.resources import files

import pytest

from gateway.events.store import CONTRACTS
from presence.lua import header_of, read_header, script_names


def test_every_webhook_script_has_a_contract():
    assert script_names("gateway.events") == sorted(c.name for c in CONTRACTS)


@pytest.mark.parametrize("contract", CONTRACTS, ids=[c.name for c in CONTRACTS])
def test_the_header_names_the_contracts_keys_and_args_in_order(contract):
    source = files("gateway.events").joinpath("lua", f"{contract.name}.lua").read_text("utf-8")
    assert read_header(source) == header_of(contract)
