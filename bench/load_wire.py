"""What the load generator's two sides share: the sockets, their frames and the clock.

Agents and customers both connect websockets with the same options, decode only the fields
they read (msgspec skips the rest unparsed, which keeps the generator's own CPU small), find a
conversation by the unique marker its first message carries, and timestamp frames with one
clock. The agents may run in other processes, so that clock must be system-wide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import Any

import msgspec
import websockets

READY_TIMEOUT_S = 30.0
SAMPLES_KEPT = 10  # error texts kept to print; every error is counted
# CLOCK_MONOTONIC is system-wide on Linux, so agent processes' timestamps compare with ours.
now = time.monotonic


# --- Frames: only the fields the generator reads (msgspec skips the rest unparsed). ----------


class _Text(msgspec.Struct):
    text: str = ""


class _Conversation(msgspec.Struct):
    id: str
    messages: list[_Text] = []


class AgentFrame(msgspec.Struct):
    type: str
    offer_id: str | None = None
    conversation: _Conversation | None = None
    conversation_id: str | None = None
    client_msg_id: str | None = None
    code: str | None = None
    detail: str | None = None
    reason: str | None = None


class CustomerFrame(msgspec.Struct):
    type: str
    client_msg_id: str | None = None
    visitor_token: str | None = None
    code: str | None = None
    detail: str | None = None


agent_decoder = msgspec.json.Decoder(AgentFrame)
customer_decoder = msgspec.json.Decoder(CustomerFrame)
encode = msgspec.json.Encoder().encode

MARKER_PREFIX = "load-"
MARKER_RE = re.compile(r"load-[0-9a-z]+-\d+")


# --- Sockets, errors and the loop. ----------------------------------------------------------


def connect(url: str, deflate: bool) -> Any:
    # No client pings: the gateway's heartbeat already probes every socket.
    return websockets.connect(
        url,
        open_timeout=10.0,
        ping_interval=None,
        max_size=2**20,
        compression="deflate" if deflate else None,
    )


def marker_in(conversation: _Conversation | None) -> str | None:
    if conversation is None:
        return None
    for message in reversed(conversation.messages):
        found = MARKER_RE.search(message.text)
        if found:
            return found.group(0)
    return None


@dataclasses.dataclass(eq=False)
class ErrorLog:
    """What went wrong on one side's sockets: every error counted, the first few kept."""

    errors: int = 0
    samples: list[str] = dataclasses.field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < SAMPLES_KEPT:
            self.samples.append(what)

    def merge(self, errors: int, samples: list[str]) -> None:
        """Add another process's errors (``errors`` and ``samples`` of its ErrorLog)."""
        self.errors += errors
        self.samples.extend(samples[: SAMPLES_KEPT - len(self.samples)])


def run(main: Any) -> Any:
    """Run a coroutine to the end, on uvloop when it is installed: the generator's own CPU is
    part of the picture on a small machine."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
