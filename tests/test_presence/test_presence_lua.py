"""Presence's scripts, loaded without a prelude, report errors at their own file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from presence.keys import PresenceKeys
from presence.lua import Scripts
from presence.scripts import REAP_NODES

SCRIPT = Path(__file__).resolve().parents[2] / "presence" / "lua" / "reap_nodes.lua"


async def test_an_error_names_the_scripts_own_file_and_line(redis, tenant):
    scripts = Scripts(redis, "presence", [REAP_NODES], PresenceKeys(tenant))
    with pytest.raises(ResponseError) as raised:
        await scripts.run("reap_nodes", now_ms=1, node_ttl_ms="not a number")
    lines = SCRIPT.read_text("utf-8").splitlines()
    (line,) = [n for n, text in enumerate(lines, start=1) if "now - tonumber(ARGV[2])" in text]
    assert f"presence/lua/reap_nodes.lua:{line}:" in str(raised.value)
