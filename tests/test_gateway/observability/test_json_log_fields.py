"""Logs: one JSON object per line when asked for, with the agent, conversation and offer a
line is about as fields, whether the call passed them (extra=) or the agent socket's log
context supplied them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator

import pytest
from harness import agent, agent_client, customer, make_config, running
from helpers import wait_until

from gateway.logs import set_log_fields, setup_logging


@contextlib.contextmanager
def gateway_logging(json_lines: bool) -> Iterator[io.StringIO]:
    """The gateway's own logging set up into a buffer, beside pytest's handlers (which
    setup_logging would replace); the root logger as it was afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("info", json=json_lines)
    ours = root.handlers[0]
    ours.setStream(stream)  # type: ignore[attr-defined]
    root.handlers[:] = [*saved_handlers, ours]
    try:
        yield stream
    finally:
        root.removeHandler(ours)
        root.setLevel(saved_level)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with gateway_logging(json_lines=True) as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def find(stream: io.StringIO, fragment: str) -> dict[str, object] | None:
    return next((e for e in lines(stream) if fragment in str(e["message"])), None)


async def test_agent_events_carry_agent_and_conversation_ids(tenant, redis_url, log_stream):
    config = make_config(tenant, agents=[agent("alice"), agent("bob")])
    async with running(config, redis_url) as gw:
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            conversation = offer["conversation"]["id"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(type="transfer", conversation_id=conversation, to_queue="general")
            await alice.expect("closed", conversation_id=conversation)
            connected = await wait_until(lambda: find(log_stream, "agent alice connected"))
            transferred = await wait_until(lambda: find(log_stream, "transferred"))
        disconnected = await wait_until(lambda: find(log_stream, "agent alice disconnected"))
    # Every line is one JSON object (lines() parsed them all).
    assert connected["agent"] == "alice"
    assert connected["level"] == "info" and connected["logger"] == "gateway.agents.socket"
    assert "conversation" not in connected
    # extra= gave the conversation; the socket's context gave the agent.
    assert transferred["conversation"] == conversation
    assert transferred["agent"] == "alice"
    # The last frame's conversation does not stick to the disconnect.
    assert disconnected["agent"] == "alice" and "conversation" not in disconnected


async def test_context_fields_stay_in_their_task_and_extra_wins(log_stream):
    log = logging.getLogger("gateway.test")

    async def handling(agent_id: str) -> None:
        set_log_fields(agent=agent_id, conversation="c-1", offer=None)
        log.info("one")
        log.info("two", extra={"conversation": "c-2"})

    await asyncio.gather(
        asyncio.create_task(handling("alice")), asyncio.create_task(handling("bob"))
    )
    log.info("outside")
    try:
        raise ValueError("multi\nline")
    except ValueError:
        log.exception("failed")
    entries = lines(log_stream)
    assert [(e.get("agent"), e.get("conversation")) for e in entries[:4]] == [
        ("alice", "c-1"),
        ("alice", "c-2"),
        ("bob", "c-1"),
        ("bob", "c-2"),
    ]
    assert all("offer" not in e for e in entries)
    assert "agent" not in entries[4]
    # A traceback stays inside its one line.
    assert "ValueError: multi\\nline" in log_stream.getvalue().splitlines()[5]
    assert "ValueError" in str(entries[5]["exception"])


def test_plain_lines_end_with_the_fields():
    with gateway_logging(json_lines=False) as stream:
        logging.getLogger("gateway.test").info("declined", extra={"agent": "alice"})
    line = stream.getvalue().strip()
    assert line.endswith("INFO gateway.test: declined agent=alice")
