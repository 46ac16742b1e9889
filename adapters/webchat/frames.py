"""The customer web chat protocol: JSON text frames, a msgspec tagged union on ``type``.

docs/protocol.md describes it for widget authors; keep the two in step. Unknown fields are
ignored (not refused) so that a newer widget still talks to an older gateway.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from adapters.contract import StoredMessage
from adapters.inputs import decode_json


class Frame(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    pass


# Client to server.


class Hello(Frame, tag="hello"):
    visitor_token: str | None = None


class FileRef(msgspec.Struct, kw_only=True):
    """A file the visitor uploaded (POST /webchat/upload), by the id the upload answered."""

    id: str


class SendMessage(Frame, tag="message"):
    text: str  # may be empty when attachments is not
    client_msg_id: str | None = None
    # The pre-chat form's values, sent with the first message (see Welcome.prechat).
    prechat: dict[str, str] | None = None
    attachments: list[FileRef] = []


class Typing(Frame, tag="typing"):
    pass


# The one CSAT scale: 1 (very unsatisfied) to 5 (very satisfied).
CSAT_SCALE = 5
Score = Annotated[int, msgspec.Meta(ge=1, le=CSAT_SCALE)]


class Rate(Frame, tag="csat"):
    """The visitor's answer to a csat_request: how satisfied they were, and why."""

    conversation_id: str
    score: Score
    comment: str | None = None


ClientFrame = Hello | SendMessage | Typing | Rate


# Server to client.


class PrechatSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One field of the pre-chat form, as the page draws it."""

    name: str
    kind: str
    required: bool = False
    label: str | None = None
    max_chars: int = 200


class UploadLimits(msgspec.Struct, kw_only=True):
    max_bytes: int
    types: list[str]


class Welcome(Frame, tag="welcome"):
    visitor_token: str
    messages: list[StoredMessage]  # required, so that it is always sent, [] included
    conversation_id: str | None = None
    # The agent already in the conversation, so that a reloaded page can say who is there.
    agent_name: str | None = None
    # The form to fill before the first message; absent when there is none or the visitor
    # filled it before.
    prechat: list[PrechatSpec] | None = None
    # Absent when uploads are off.
    uploads: UploadLimits | None = None
    # The deployment's own close sentences (reason -> language -> sentence), over the page's.
    close_messages: dict[str, dict[str, str]] | None = None


class MessageFrame(Frame, tag="message"):
    message: StoredMessage
    conversation_id: str | None = None
    # Set on the echo of the customer's own message, so the page can match its pending bubble.
    client_msg_id: str | None = None


class QueueFrame(Frame, tag="queue"):
    position: int
    eta_s: float | None = None


class AgentFrame(Frame, tag="agent"):
    name: str


class AgentLeftFrame(Frame, tag="agent_left"):
    """The agent had to leave (gone for good: past the grace period, or set offline); the
    conversation waits for another agent."""

    reason: str


class ClosedFrame(Frame, tag="closed"):
    reason: str


class CsatRequest(Frame, tag="csat_request"):
    """The conversation closed: how satisfied was the visitor, from 1 to ``scale``?"""

    conversation_id: str
    scale: int


class CsatThanks(Frame, tag="csat_thanks"):
    """The rating is stored (sent to every tab of the visitor)."""

    conversation_id: str
    score: int


class ErrorFrame(Frame, tag="error"):
    code: str
    detail: str
    field: str | None = None
    client_msg_id: str | None = None


ServerFrame = (
    Welcome
    | MessageFrame
    | QueueFrame
    | AgentFrame
    | AgentLeftFrame
    | ClosedFrame
    | CsatRequest
    | CsatThanks
    | ErrorFrame
)


class NodeDelivery(msgspec.Struct, array_like=True):
    """What one gateway process sends another to reach a visitor's sockets there."""

    visitor_id: str
    frame: bytes  # an encoded server frame, sent as is


client_decoder = msgspec.json.Decoder(ClientFrame)
server_decoder = msgspec.json.Decoder(ServerFrame)
node_decoder = msgspec.msgpack.Decoder(NodeDelivery)
_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()


def encode(frame: Frame) -> bytes:
    return _json.encode(frame)


def encode_node(delivery: NodeDelivery) -> bytes:
    return _msgpack.encode(delivery)


def decode_client(data: bytes | str) -> ClientFrame:
    """Decode one client frame; raises msgspec.DecodeError (see :func:`decode_error`)."""
    return decode_json(client_decoder.decode, data)


def decode_error(exc: msgspec.DecodeError) -> ErrorFrame:
    """An error frame naming the field that made a client frame invalid."""
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return ErrorFrame(code="bad_json", detail=text)
    problem, _, path = text.partition(" - at `$")
    field = path.rstrip("`").lstrip(".") or None
    if field is None and problem.startswith("Object missing required field"):
        # "Object missing required field `text`": the field is in the message, not the path.
        field = problem.split("`")[1]
    if field == "type" and problem.startswith("Invalid value"):
        problem = "unknown frame type"
    return ErrorFrame(code="bad_frame", detail=problem, field=field)
