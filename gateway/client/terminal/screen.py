"""The terminal's output: timestamped lines, and how customers and messages read on one.

Whole lines, flushed at once, so that a pipe (or a test) sees each as it is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from gateway.agents.protocol import Conversation, Message

INDENT = " " * 9  # under the "HH:MM:SS " of the line above


def clock(when: datetime | None = None) -> str:
    """Local wall-clock time, HH:MM:SS."""
    when = datetime.now() if when is None else when
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%H:%M:%S")


def customer_label(conversation: Conversation) -> str:
    customer = conversation.customer
    return f"{customer.name} ({clip_id(customer.id)})" if customer.name else clip_id(customer.id)


def clip_id(value: str, keep: int = 8) -> str:
    """A long opaque id (a web chat visitor's, say) cut to its tail."""
    return value if len(value) <= 2 * keep else "..." + value[-keep:]


def one_line(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def author(conv: Conversation | None, message: Message) -> str:
    if message.direction == "out":
        return message.author or "agent"
    if conv is not None:
        return conv.customer.name or clip_id(conv.customer.id)
    return message.author or "customer"


def message_text(message: Message) -> str:
    names = "".join(f" [attachment: {a.name}]" for a in message.attachments)
    return message.text + names


class Printer:
    """Writes whole lines and flushes them, so that pipes see them at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def say(self, text: str, *, when: datetime | None = None) -> None:
        self.stream.write(f"{clock(when)} {text}\n")
        self.stream.flush()

    def more(self, text: str) -> None:
        self.stream.write(f"{INDENT}{text}\n")
        self.stream.flush()
