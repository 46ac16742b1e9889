"""The agent websocket protocol, version 1: JSON text frames, a tagged union on ``type``.

docs/protocol.md is the reference for clients; keep the two in step.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from adapters.model import Attachment, Conversation, DeadlineKind, Message

PROTOCOL_VERSION = 1

# Close codes of the agent socket.
CLOSE_BAD_TOKEN = 4401
CLOSE_REPLACED = 4409
CLOSE_TOO_BIG = 1009
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 4400


class Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, kw_only=True):
    pass


# Client to server.


class Hello(Frame, tag="hello"):
    token: str | None = None
    protocol: int = PROTOCOL_VERSION


class SetStatus(Frame, tag="set_status"):
    status: str


class Accept(Frame, tag="accept"):
    offer_id: str


class Decline(Frame, tag="decline"):
    offer_id: str
    reason: str | None = None


class Reply(Frame, tag="reply"):
    conversation_id: str
    text: str
    client_msg_id: str
    attachments: list[Attachment] = []
    subject: str | None = None  # channels with subjects (email); the channel checks it


class Transfer(Frame, tag="transfer"):
    conversation_id: str
    to_agent: str | None = None
    to_queue: str | None = None
    note: str | None = None


class Close(Frame, tag="close"):
    conversation_id: str
    reason: str | None = None  # one of the welcome's close_reasons when it lists any


class AddNote(Frame, tag="note"):
    """An internal note on a conversation: kept with it, never sent to the customer."""

    conversation_id: str
    text: str


class HistoryRequest(Frame, tag="history"):
    """The customer's earlier conversations, answered with a ``history`` frame."""

    conversation_id: str


class Ping(Frame, tag="ping"):
    pass


ClientFrame = (
    Hello
    | SetStatus
    | Accept
    | Decline
    | Reply
    | Transfer
    | Close
    | AddNote
    | HistoryRequest
    | Ping
)


# Server to client.


class AgentInfo(msgspec.Struct, kw_only=True):
    id: str
    name: str
    # The name customers see (for {agent_name} in canned replies); never the id.
    shown_as: str = ""
    status: str
    capacity: dict[str, int]
    statuses: list[str]


class NoteAuthor(msgspec.Struct, kw_only=True):
    id: str
    name: str


class Note(msgspec.Struct, kw_only=True):
    """An internal note, for agents only; stored msgpack-encoded with the conversation."""

    id: str
    author: NoteAuthor
    text: str
    at_ms: int


class CannedReply(msgspec.Struct, kw_only=True):
    """A canned reply (快捷回复); ``queues`` empty: for every conversation."""

    id: str
    title: str
    text: str
    queues: list[str] = []


class PastConversation(msgspec.Struct, kw_only=True):
    """One of a customer's earlier conversations, as kept when it closed."""

    id: str
    channel: str
    queue: str
    opened_ms: int
    closed_ms: int
    agent: str | None
    close_reason: str | None
    messages: int
    last_text: str | None
    agent_name: str | None = None


class Welcome(Frame, tag="welcome"):
    agent: AgentInfo
    conversations: list[Conversation]
    protocol: int = PROTOCOL_VERSION
    canned_replies: list[CannedReply] = []
    close_reasons: list[str] = []
    notes: dict[str, list[Note]] = {}  # conversation id -> its notes, oldest first
    queue_sla_s: dict[str, float] = {}  # each queue's SLA, for conversations without their own


class Offer(Frame, tag="offer"):
    offer_id: str
    conversation: Conversation
    expires_in_s: float
    notes: list[Note] = []


class OfferRevoked(Frame, tag="offer_revoked"):
    offer_id: str
    reason: str


class Assigned(Frame, tag="assigned"):
    conversation: Conversation
    notes: list[Note] = []


class MessageFrame(Frame, tag="message"):
    conversation_id: str
    message: Message


class ReplyAck(Frame, tag="reply_ack"):
    client_msg_id: str
    message_id: str
    # When the reply was stored, by the gateway's clock, so a client orders it among the
    # customer's messages without mixing in its own clock; None for a repeated reply.
    sent_at: datetime | None = None


class Closed(Frame, tag="closed"):
    conversation_id: str
    reason: str


class Notice(Frame, tag="notice"):
    """Something a channel wants the agent holding a conversation to know: a reply window
    about to close, a bounced reply."""

    conversation_id: str
    code: str
    detail: str


class DeadlineFrame(Frame, tag="deadline"):
    """A graded complaint's deadline (超时提醒) to the agent holding it: its reminder
    (``stage = "reminder"``) or its passing (``"missed"``, with the grade's action)."""

    conversation_id: str
    deadline: DeadlineKind
    stage: str  # reminder | missed
    due_at: datetime
    action: str | None = None  # missed: raise_priority | move_to_queue | notify_leads


class NoteAdded(Frame, tag="note"):
    conversation_id: str
    note: Note


class History(Frame, tag="history"):
    conversation_id: str
    conversations: list[PastConversation]  # newest first


class CsatFrame(Frame, tag="csat"):
    """A customer rated a conversation this agent held, after it closed."""

    conversation_id: str
    score: int
    scale: int = 5
    comment: str | None = None


class StatusFrame(Frame, tag="status"):
    status: str
    reason: str | None = None


class Pong(Frame, tag="pong"):
    pass


class Error(Frame, tag="error", omit_defaults=True):
    code: str
    detail: str
    field: str | None = None
    client_msg_id: str | None = None
    conversation_id: str | None = None
    offer_id: str | None = None


ServerFrame = (
    Welcome
    | Offer
    | OfferRevoked
    | Assigned
    | MessageFrame
    | ReplyAck
    | Closed
    | Notice
    | DeadlineFrame
    | NoteAdded
    | History
    | CsatFrame
    | StatusFrame
    | Pong
    | Error
)

# Canned replies: the placeholders a text may hold, filled in where the reply is chosen (the
# console's JS does the same substitution). Anything else in braces is left alone, so that a
# text may hold JSON or an emoticon; an unknown {name} is a config error instead.
PLACEHOLDERS = ("customer_name", "agent_name")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders_in(text: str) -> list[str]:
    """Every ``{name}`` in a canned reply's text, known or not."""
    return _PLACEHOLDER.findall(text)


def expand_canned(
    text: str, customer_name: str | None = None, agent_name: str | None = None
) -> str:
    """A canned reply's text with ``{customer_name}`` and ``{agent_name}`` filled in (a
    missing name becomes empty)."""
    values = {"customer_name": customer_name or "", "agent_name": agent_name or ""}
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], m[0]), text)


client_decoder = msgspec.json.Decoder(ClientFrame)
server_decoder = msgspec.json.Decoder(ServerFrame)
encoder = msgspec.json.Encoder()


def encode(frame: Frame) -> bytes:
    return encoder.encode(frame)


def decode_error(exc: msgspec.DecodeError) -> Error:
    """An error frame naming the field that made a client frame invalid."""
    text = str(exc)
    problem, _, path = text.partition(" - at `$")
    field = path.rstrip("`").lstrip(".") or None
    if (
        field is None
        and "`" in problem
        and ("missing required field" in problem or "unknown field" in problem)
    ):
        field = problem.split("`")[1]
    if "Invalid value" in problem and field == "type":
        problem = "unknown frame type"
    return Error(code="bad_frame", detail=problem, field=field)
