"""The typed route reads and writes the JSON the Lua scripts share (docs/design.md's key
table): two-letter keys, no nulls, flags as 1, and whatever cjson writes decodes."""

from __future__ import annotations

import json

import pytest

from router.route import Route, RouteDeadlines, decode_route, encode_route


def test_a_new_route_has_only_the_keys_that_are_set():
    route = Route(queue="general", channel="webchat", priority=3, enqueued_ms=5, customer_field="k")
    assert json.loads(encode_route(route)) == {
        "q": "general",
        "c": "webchat",
        "p": 3,
        "e": 5,
        "k": "k",
    }


def test_every_field_has_its_key_and_none_is_written_as_null():
    route = Route(
        queue="q",
        channel="c",
        priority=1,
        enqueued_ms=2,
        customer_field="k",
        skills={},
        grade="A",
        sla_s=60.0,
        waits_from_ms=3,
        basis="b",
        preferred_agent="alice",
        preferred_until_ms=4,
        preferred_must_qualify=1,
        last_agent_field="kl",
        overflow_queues=["x"],
        escalation_steps=1,
        ageing_steps=2,
        max_wait_came=1,
        leave_message=1,
        transfer_note="note",
        transferred_from="bob",
        deadlines=RouteDeadlines(action="raise_priority", priority=9, first_due_ms=5),
    )
    stored = json.loads(encode_route(route))
    assert set(stored) == {
        "q", "c", "p", "e", "k", "s", "g", "sla", "w", "pb", "pa", "pu", "pk", "kl",
        "x", "es", "ag", "mw", "lm", "tn", "tf", "dl",
    }  # fmt: skip
    assert stored["dl"] == {"a": "raise_priority", "p": 9, "f": 5}
    assert None not in stored.values()
    assert decode_route(encode_route(route)) == route


def test_what_cjson_writes_decodes():
    # An integral number as a float, and a key this version does not know.
    raw = b'{"q":"g","c":"c","p":7.0,"e":1.7e+12,"k":"k","pu":1.7e+12,"zz":[1],"s":{}}'
    route = decode_route(raw)
    assert (route.priority, route.enqueued_ms, route.preferred_until_ms) == (7, 1.7e12, 1.7e12)
    assert isinstance(route.enqueued_ms, int) and route.skills == {}


def test_a_fraction_of_a_millisecond_is_refused():
    with pytest.raises(ValueError):
        decode_route(b'{"q":"g","c":"c","p":1,"e":1.5,"k":"k"}')
