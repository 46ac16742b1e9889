"""The agent websocket protocol, version 1: JSON text frames, a tagged union on ``type``.

docs/protocol.md is the reference for clients; keep the two in step.
"""

from __future__ import annotations

import msgspec

from adapters.model import Attachment, Conversation, Message

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


class Ping(Frame, tag="ping"):
    pass


ClientFrame = Hello | SetStatus | Accept | Decline | Reply | Transfer | Close | Ping


# Server to client.


class AgentInfo(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    capacity: dict[str, int]
    statuses: list[str]


class Welcome(Frame, tag="welcome"):
    agent: AgentInfo
    conversations: list[Conversation]
    protocol: int = PROTOCOL_VERSION


class Offer(Frame, tag="offer"):
    offer_id: str
    conversation: Conversation
    expires_in_s: float


class OfferRevoked(Frame, tag="offer_revoked"):
    offer_id: str
    reason: str


class Assigned(Frame, tag="assigned"):
    conversation: Conversation


class MessageFrame(Frame, tag="message"):
    conversation_id: str
    message: Message


class ReplyAck(Frame, tag="reply_ack"):
    client_msg_id: str
    message_id: str


class Closed(Frame, tag="closed"):
    conversation_id: str
    reason: str


class Notice(Frame, tag="notice"):
    """Something a channel wants the agent holding a conversation to know: a reply window
    about to close, a bounced reply."""

    conversation_id: str
    code: str
    detail: str


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
    | StatusFrame
    | Pong
    | Error
)

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
