"""What the router's operations return, and the error it raises."""

from __future__ import annotations

import msgspec

from adapters.model import Message, Reclassified
from router.config import GradeConfig


class Placement(msgspec.Struct, kw_only=True):
    """Where a new conversation goes, as classification decided."""

    queue: str
    priority: int
    skills: dict[str, int] | None = None
    grade: str | None = None
    sla_s: float | None = None
    # When the queue is closed now: its opening, from which waiting time (escalation, ageing,
    # the maximum wait) counts.
    waits_from_ms: int | None = None
    # What classification decided, before business hours, as a comparable string: placing a
    # waiting conversation afresh on the same basis (an edit that classifies the same) leaves
    # it alone, escalation steps and ageing included. None: always placed afresh.
    basis: str | None = None
    # The grade's table when it has one: its deadlines start when the conversation opens.
    grade_config: GradeConfig | None = None


class RoutingError(Exception):
    """A request the router refuses; ``code`` is the agent protocol's error code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class Ingested(msgspec.Struct, kw_only=True):
    conversation_id: str
    message: Message
    duplicate: bool
    created: bool = False
    reopened: bool = False
    state: str = "queued"
    agent: str | None = None
    agent_node: str | None = None
    queue: str | None = None
    queue_position: int | None = None


class OfferMade(msgspec.Struct, frozen=True):
    """A routing decision: an offer, or (auto-accept) a direct assignment."""

    offer_id: str | None
    conversation_id: str
    agent: str
    node: str | None
    queue: str
    enqueued_ms: int
    assigned: bool = False


class Released(msgspec.Struct, frozen=True):
    offer_id: str
    conversation_id: str
    agent: str
    queue: str
    agent_set_away: bool = False
    offer_due_ms: int = 0  # when the offer was due to time out (0: unknown)


class TimerEvent(msgspec.Struct, frozen=True):
    kind: str  # escalated | aged | max_wait | idle_warn | idle_close | reoffer
    conversation_id: str
    detail: str


class AgentExpiry(msgspec.Struct, frozen=True):
    agent: str
    conversation_id: str | None
    what: str  # offline | requeued | revoked
    offer_id: str | None = None


class Accepted(msgspec.Struct, frozen=True):
    conversation_id: str
    queue: str
    channel: str
    enqueued_ms: int
    sla_s: float | None = None
    leave_message: bool = False
    offer_due_ms: int = 0  # when the accepted offer was due to time out (0: unknown)


class ClosedOutcome(msgspec.Struct, frozen=True):
    previous_state: str
    agent: str | None
    offered_to: str | None
    offer_id: str | None


class ReplyStored(msgspec.Struct, frozen=True):
    message_id: str
    duplicate: bool
    first_reply: bool


# The router's name for what replace returns: the one struct adapters receive, not a copy.
Replaced = Reclassified


class QueueStats(msgspec.Struct, frozen=True):
    depth: int
    oldest_enqueued_ms: int | None
