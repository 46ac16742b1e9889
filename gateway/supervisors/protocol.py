"""The supervisor websocket protocol, version 1: JSON text frames, a tagged union on
``type``, as the agent protocol is (gateway/agents/protocol.py), whose close codes, ``hello``
and message objects it shares so a client reads both the same way.

docs/protocol.md ("The supervisor socket") is the reference for clients; keep the two in
step."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from adapters.model import Message
from gateway.admin.quality_views import QaView, ScorecardItemView
from gateway.agents.protocol import Hello, decode_error

PROTOCOL_VERSION = 1

RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Filter = Annotated[str, msgspec.Meta(max_length=200)]


class Frame(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    pass


# Client to server. Unknown fields are refused: a misspelt filter must not widen a search.


class Search(Frame, tag="search"):
    request_id: RequestId
    text: Filter | None = None
    customer: Filter | None = None
    agent: Filter | None = None
    queue: Filter | None = None
    channel: Filter | None = None


class Watch(Frame, tag="watch"):
    conversation_id: Id


class Unwatch(Frame, tag="unwatch"):
    conversation_id: Id


class TransferAction(Frame, tag="transfer"):
    request_id: RequestId
    conversation_id: Id
    to_agent: Id | None = None
    to_queue: Id | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class CloseAction(Frame, tag="close"):
    request_id: RequestId
    conversation_id: Id
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class TakeOver(Frame, tag="take_over"):
    request_id: RequestId
    conversation_id: Id


class SetAgentStatus(Frame, tag="set_agent_status"):
    request_id: RequestId
    agent_id: Id
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Ping(Frame, tag="ping"):
    pass


class QaList(Frame, tag="qa_list"):
    """The QA queue of the lead's queues (the admin API's GET /api/qa, first page)."""

    request_id: RequestId
    status: Literal["pending", "scored"] = "pending"


class QaScore(Frame, tag="qa_score"):
    """Score a conversation of the QA queue (the admin API's POST /api/qa/{id})."""

    request_id: RequestId
    conversation_id: Id
    items: dict[str, Any]  # scorecard item -> 0..100, checked item by item
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


ClientFrame = (
    Search
    | Watch
    | Unwatch
    | TransferAction
    | CloseAction
    | TakeOver
    | SetAgentStatus
    | Ping
    | QaList
    | QaScore
)
Action = TransferAction | CloseAction | TakeOver | SetAgentStatus


# Server to client.


class SupervisorInfo(msgspec.Struct, kw_only=True):
    id: str
    name: str
    queues: list[str]  # the queues they see, resolved (all of them when the config names none)
    agent: str | None


class Welcome(Frame, tag="welcome"):
    supervisor: SupervisorInfo
    statuses: list[str]
    not_ready_reasons: list[str]
    close_reasons: list[str]
    protocol: int = PROTOCOL_VERSION


class QueueTile(msgspec.Struct, kw_only=True):
    name: str
    depth: int
    oldest_wait_s: float | None
    sla_met_15m: float | None  # share answered within SLA; None: none answered in the window
    sla_answered_15m: int
    available: int  # eligible, available and with room for one more of its conversations
    busy: int  # eligible and available, but full
    away: int  # eligible, signed in and not ready (away or a not-ready reason)


class AgentTile(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    reason: str | None
    since_ms: int | None  # when this process first saw the status; None: not seen change
    load: dict[str, int]
    capacity: dict[str, int]
    conversations: list[str]


class Wallboard(Frame, tag="wallboard"):
    at_ms: int
    queues: list[QueueTile]
    agents: list[AgentTile]


class CustomerSummary(msgspec.Struct, kw_only=True):
    id: str
    name: str | None


class ConversationSummary(msgspec.Struct, kw_only=True):
    id: str
    channel: str
    queue: str
    state: str  # waiting | offered | assigned
    agent: str | None
    customer: CustomerSummary
    enqueued_ms: int | None
    last_text: str | None


class SearchResults(Frame, tag="search_results"):
    request_id: str
    conversations: list[ConversationSummary]


class Watching(Frame, tag="watching"):
    conversation_id: str
    conversation: ConversationSummary
    messages: list[Message]
    notes: list[str] = []


class MessageFrame(Frame, tag="message"):
    conversation_id: str
    message: Message


class Closed(Frame, tag="closed"):
    conversation_id: str
    reason: str


class DeadlineAlert(Frame, tag="deadline"):
    """A graded complaint's deadline (超时提醒) in one of the lead's queues: its reminder
    (``stage = "reminder"``) or its passing (``"missed"``, with the grade's action). Sent to
    every lead of the queue, watching or not; ``agent``: who holds it, if anyone."""

    conversation_id: str
    queue: str
    grade: str | None
    agent: str | None
    deadline: str  # first_response | resolve
    stage: str  # reminder | missed
    due_at: datetime
    action: str | None = None


class Unwatched(Frame, tag="unwatched"):
    conversation_id: str


class QaResults(Frame, tag="qa_results"):
    request_id: str
    status: str
    scorecard: list[ScorecardItemView]
    conversations: list[QaView]


class Done(Frame, tag="done"):
    request_id: str
    action: str


class Error(Frame, tag="error"):
    code: str
    detail: str
    field: str | None = None
    request_id: str | None = None


class Pong(Frame, tag="pong"):
    pass


ServerFrame = (
    Welcome
    | Wallboard
    | SearchResults
    | Watching
    | MessageFrame
    | Closed
    | DeadlineAlert
    | Unwatched
    | QaResults
    | Done
    | Error
    | Pong
)

client_decoder = msgspec.json.Decoder(ClientFrame)
hello_decoder = msgspec.json.Decoder(Hello)  # the agent socket's hello, as it is
server_decoder = msgspec.json.Decoder(ServerFrame)
encoder = msgspec.json.Encoder()


def encode(frame: Frame) -> bytes:
    return encoder.encode(frame)


def bad_frame(exc: msgspec.DecodeError, request_id: str | None = None) -> Error:
    """An error frame naming the field that made a client frame invalid (as the agent
    socket's)."""
    agent_error = decode_error(exc)
    return Error(
        code="bad_frame", detail=agent_error.detail, field=agent_error.field, request_id=request_id
    )
