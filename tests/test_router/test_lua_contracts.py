"""Each Lua script's contract is declared once in Python, and the script's header says the
same: every .lua file has a contract and every contract a file, and the header names the KEYS
and ARGV entries of its contract in the same order. A call names what it passes; an error in
a script names the .lua file and its own line."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from presence import scripts as presence_scripts
from presence.keys import PresenceKeys
from presence.lua import LuaContract, Scripts, header_of, lua_path, read_header, script_names
from router import scripts as router_scripts
from router.events import EventsConfig
from router.keys import RouterKeys

ROOT = Path(__file__).resolve().parents[2]
OWNERS = {"router": router_scripts.CONTRACTS, "presence": presence_scripts.CONTRACTS}
EVERY_CONTRACT = [(package, c) for package, contracts in OWNERS.items() for c in contracts]


def test_every_lua_script_has_a_contract_and_every_contract_a_script():
    assert {p.parent.parent.name for p in ROOT.glob("*/lua/*.lua")} == set(OWNERS)
    for package, contracts in OWNERS.items():
        assert script_names(package) == sorted(c.name for c in contracts), package


@pytest.mark.parametrize(
    ("package", "contract"), EVERY_CONTRACT, ids=[lua_path(p, c.name) for p, c in EVERY_CONTRACT]
)
def test_the_header_names_the_contracts_keys_and_args_in_order(package, contract):
    source = (ROOT / lua_path(package, contract.name)).read_text("utf-8")
    assert read_header(source) == header_of(contract)


def test_a_header_out_of_order_or_malformed_is_refused():
    with pytest.raises(ValueError, match="out of order"):
        read_header("-- KEYS[1] state: s\n-- KEYS[3] route: r\n")
    with pytest.raises(ValueError, match="out of place"):
        read_header("-- ARGV[1] now_ms: n\n-- ARGV[3..] queue_names: q\n")
    with pytest.raises(ValueError, match="not a header entry"):
        read_header("-- KEYS[1] conversation state\n")


def test_entries_counted_from_the_end_come_last_and_in_order():
    header = read_header(
        "-- KEYS[1] state: s\n-- KEYS[2..] queue_keys: q\n-- KEYS[#KEYS] events: e\n"
        "-- ARGV[1] now_ms: n\n-- ARGV[#ARGV-1] events_max_len: l\n"
        "-- ARGV[#ARGV] events_max_age_ms: a\n"
    )
    assert header.last_keys == ("events",)
    assert header.last_args == ("events_max_len", "events_max_age_ms")
    with pytest.raises(ValueError, match="after the entries counted from the end"):
        read_header("-- KEYS[#KEYS] events: e\n-- KEYS[1] state: s\n")
    with pytest.raises(ValueError, match="out of order"):
        read_header("-- ARGV[#ARGV] a: a\n-- ARGV[#ARGV-1] b: b\n")
    with pytest.raises(ValueError, match="wrong table"):
        read_header("-- KEYS[#ARGV] events: e\n")


def test_a_contract_refuses_a_name_used_twice():
    with pytest.raises(ValueError, match="route"):
        LuaContract("x", keys=("route",), args=("route",))


def router_scripts_for(redis, tenant, *contracts):
    return Scripts(
        redis,
        "router",
        contracts,
        RouterKeys(tenant, ["general"]),
        PresenceKeys(tenant),
        fixed_args=EventsConfig().trim_args(),
    )


TIMERS_CALL = {"queue_keys": [], "now_ms": 1, "limit": 1, "lease_ms": 1, "queue_names": []}


async def test_a_call_missing_or_misnaming_an_entry_is_refused(redis, tenant):
    scripts = router_scripts_for(redis, tenant, router_scripts.TIMERS)
    assert await scripts.run("timers", **TIMERS_CALL) == []
    misnamed = {n: v for n, v in TIMERS_CALL.items() if n != "lease_ms"} | {"lease": 1}
    with pytest.raises(TypeError, match=r"missing \['lease_ms'\], unknown \['lease'\]"):
        await scripts.run("timers", **misnamed)
    # A key the key builders fix is not given again.
    with pytest.raises(TypeError, match=r"missing \[\], unknown \['state'\]"):
        await scripts.run("timers", state="elsewhere", **TIMERS_CALL)


def line_of(package: str, name: str, text: str) -> int:
    lines = (ROOT / lua_path(package, name)).read_text("utf-8").splitlines()
    (number,) = [i for i, line in enumerate(lines, start=1) if text in line]
    return number


async def test_an_error_names_the_scripts_own_file_and_line(redis, tenant):
    k = RouterKeys(tenant, ["general"])
    scripts = router_scripts_for(redis, tenant, router_scripts.INGEST)
    with pytest.raises(ResponseError) as raised:
        await scripts.run(
            "ingest",
            dedupe=k.dedupe("fake", "a", "m1"),
            messages=k.messages("c1"),
            queue=k.queue("general"),
            queue_keys=k.queue_keys,
            field="fake|a|cust",
            expected="",
            new_conversation="c1",
            message="m",
            message_id="m1",
            new_meta="meta",
            new_route="{}",
            score="not a score",  # ZADD refuses it
            dedupe_ttl_ms=1000,
            now_ms=1,
            reopen="",
            reopen_within_ms=0,
            message_json="{}",
            conversation_json="{}",
            timer_item_count=0,
            timer_items=[],
            queue_names=k.queue_names,
        )
    line = line_of("router", "ingest", "redis.call('ZADD', KEYS[7], ARGV[8], conv)")
    assert f"router/lua/ingest.lua:{line}." in str(raised.value)
    assert "user_script" not in str(raised.value)


async def test_an_error_in_the_prelude_names_common_lua_and_its_line(redis, tenant):
    k = RouterKeys(tenant, ["general"])
    scripts = router_scripts_for(redis, tenant, router_scripts.REPLACE)
    await redis.hset(k.state, "c1", "queued")
    await redis.hset(k.route, "c1", "not JSON")  # get_route cannot decode it
    with pytest.raises(ResponseError) as raised:
        await scripts.run(
            "replace",
            queue_keys=k.queue_keys,
            conversation="c1",
            queue="general",
            priority=1,
            skills="",
            grade="",
            sla_s="",
            basis="",
            now_ms=1,
            queue_names=k.queue_names,
        )
    line = line_of("router", "_common", "return cjson.decode(raw)")
    assert f"router/lua/_common.lua:{line}:" in str(raised.value)
