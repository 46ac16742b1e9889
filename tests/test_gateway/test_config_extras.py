"""The `[conversations]` table and `[[canned_replies]]`: defaults, and errors that name the
file, the table and the key."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, parse_config


def parse(data: dict[str, Any]):
    return parse_config(data, "z.toml", {}, env={})


def test_defaults() -> None:
    core = parse({}).core
    assert core.canned_replies == []
    assert core.conversations.close_reasons == []
    assert core.conversations.history_days == 90.0
    assert core.conversations.history_limit == 20


def test_canned_replies_and_reasons_load() -> None:
    core = parse(
        {
            "queues": [{"name": "general"}, {"name": "billing"}],
            "conversations": {"close_reasons": ["resolved", "spam"]},
            "canned_replies": [
                {"id": "hi", "text": "Hi {customer_name}, {agent_name} here {:)}"},
                {"id": "bill", "title": "Bill", "text": "x", "queues": ["billing"]},
            ],
        }
    ).core
    assert [c.id for c in core.canned_replies] == ["hi", "bill"]
    assert core.canned_replies[0].title is None and core.canned_replies[1].queues == ["billing"]
    assert core.conversations.close_reasons == ["resolved", "spam"]


@pytest.mark.parametrize(
    ("data", "table", "key", "problem"),
    [
        ({"canned_replies": [{"id": "a", "text": "Hi {name}"}]}, 'canned_replies "a"', "text",
         "unknown placeholder {name}"),
        ({"canned_replies": [{"id": "a", "text": "x", "queues": ["nope"]}]},
         'canned_replies "a"', "queues", 'no queue named "nope"'),
        ({"canned_replies": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
         'canned_replies "a"', "id", "duplicate"),
        ({"canned_replies": [{"id": "a", "text": "  "}]}, 'canned_replies "a"', "text", "empty"),
        ({"canned_replies": [{"id": "a"}]}, 'canned_replies "a"', "text", "missing"),
        ({"conversations": {"close_reasons": ["other"]}}, "conversations", "close_reasons",
         "the metric's own label"),
        ({"conversations": {"close_reasons": ["a", "a"]}}, "conversations", "close_reasons",
         "twice"),
        ({"conversations": {"history_limit": 0}}, "conversations", "history_limit", "1 to 100"),
        ({"conversations": {"history_days": -1}}, "conversations", "history_days", "negative"),
        ({"conversations": {"close_reason": []}}, "conversations", "close_reason", "unknown"),
    ],
)  # fmt: skip
def test_errors_name_the_table_and_key(data, table, key, problem) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    error = caught.value
    assert (error.file, error.table, error.key) == ("z.toml", table, key)
    assert problem in error.problem
