"""The message model every part of the house speaks: who wrote, what they wrote, and the
conversation an agent sees.

Channel adapters produce and consume these structs, the router stores them and the agent
protocol sends them, so one definition serves all three and nothing converts between copies.
Reclassified is here for the same reason: the router's replace returns it and the adapter host
hands it to the adapter as it is.
It sits at the bottom of the house and imports nothing of ours (only msgspec and the stdlib):
the adapters, the router and the agent client may all import it without importing each
other. Messages and customers are stored in Redis msgpack-encoded and sent to agents as JSON,
so a field's name, order and default are part of those wire formats.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import msgspec

ConversationState = Literal["queued", "offered", "assigned", "closed"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Customer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Who wrote, as the channel identifies them (openid, email address, visitor id...)."""

    id: str
    name: str | None = None


class Attachment(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    url: str | None = None


class Message(msgspec.Struct, kw_only=True):
    """A message of a conversation, either direction, as stored and as agents and adapters
    see it."""

    id: str
    direction: Literal["in", "out"]
    text: str
    sent_at: datetime
    attachments: list[Attachment] = []
    kind: str = "text"
    author: str | None = None
    # What the channel told about the message (a WeChat media id, an email subject...).
    metadata: dict[str, str] = {}


class Inbound(msgspec.Struct, kw_only=True):
    """One customer message, channel-neutral."""

    channel: str
    account: str
    external_id: str
    customer: Customer
    text: str = ""
    kind: str = "text"
    attachments: list[Attachment] = []
    metadata: dict[str, str] = {}
    received_at: datetime = msgspec.field(default_factory=utc_now)
    # A thread of the customer's (email: the thread's first Message-ID). Each thread is a
    # conversation of its own; without one, the customer has one open conversation per
    # channel and account.
    thread: str | None = None
    # A message for this customer's (and thread's) conversation closed less than this long
    # ago reopens it instead of opening a new one. 0: never.
    reopen_within_s: float = 0.0


class Outbound(msgspec.Struct, kw_only=True):
    """An agent's reply, to be sent on the customer's own channel."""

    channel: str
    account: str
    conversation_id: str
    customer: Customer
    message_id: str
    text: str
    attachments: list[Attachment] = []
    agent_name: str | None = None
    metadata: dict[str, str] = {}


class ConversationEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Something the customer may be told about: their place in the queue, an agent joining,
    their agent leaving (``reason`` "agent_gone": the conversation went back to the queue for
    another agent), the conversation closing, the question whether they were satisfied
    (``csat_request``, on a scale of 1 to ``scale``; sent to adapters whose ``csat`` is
    "frames"). Channels that cannot show such things ignore them."""

    kind: Literal["queued", "agent_joined", "agent_left", "closed", "csat_request"]
    channel: str
    account: str
    conversation_id: str
    customer: Customer
    position: int | None = None
    eta_s: float | None = None
    agent_name: str | None = None
    reason: str | None = None
    scale: int | None = None


class Reclassified(msgspec.Struct, kw_only=True, frozen=True):
    """What placing a conversation afresh did when its content changed (an edited review).
    ``moved``: it was waiting and now waits where the new content places it (its queue,
    priority, skills, grade and SLA; the queue may be the same one). Otherwise nothing
    changed: it was offered, assigned or closed (``state``), or it was waiting and the new
    content classifies as the old did."""

    moved: bool
    state: ConversationState
    from_queue: str | None = None
    to_queue: str | None = None


DeadlineKind = Literal["first_response", "resolve"]
# pending: not due yet; reminded: its reminder went out; met: answered (first response) or
# closed (resolution) in time; missed: it passed; closed: closed before any first response.
DeadlineState = Literal["pending", "reminded", "met", "missed", "closed"]


class Deadline(msgspec.Struct, kw_only=True):
    """A graded complaint's deadline (超时提醒), counted from the conversation's opening."""

    kind: DeadlineKind
    due_at: datetime
    remind_at: datetime | None  # None: the grade sends no reminder
    state: DeadlineState


class Conversation(msgspec.Struct, kw_only=True):
    """A conversation as an agent sees it: metadata, routing state and recent messages."""

    id: str
    channel: str
    account: str
    queue: str
    customer: Customer
    priority: int
    state: ConversationState
    agent: str | None
    created_at: datetime
    messages: list[Message]
    grade: str | None = None
    transfer_note: str | None = None
    transferred_from: str | None = None
    leave_message: bool = False
    sla_s: float | None = None  # a grade's SLA; None: the queue's
    deadlines: list[Deadline] = []  # a graded complaint's, when its grade has any
