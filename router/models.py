"""Conversations and messages as the router stores them and agents see them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

ConversationState = Literal["queued", "offered", "assigned", "closed"]


class Customer(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str | None = None


class Attachment(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    url: str | None = None


class Message(msgspec.Struct, kw_only=True):
    id: str
    direction: Literal["in", "out"]
    text: str
    sent_at: datetime
    attachments: list[Attachment] = []
    kind: str = "text"
    author: str | None = None
    # What the channel told about the message (a WeChat media id, an email subject...).
    metadata: dict[str, str] = {}


class ConversationMeta(msgspec.Struct, kw_only=True):
    """What is fixed when a conversation opens; stored once, msgpack-encoded."""

    id: str
    channel: str
    account: str
    customer: Customer
    queue: str
    priority: int
    created_at: datetime


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

    @classmethod
    def of(
        cls,
        meta: ConversationMeta,
        state: ConversationState,
        agent: str | None,
        messages: list[Message],
        route: dict[str, Any],
    ) -> Conversation:
        """Metadata fixed at opening, with what routing may have changed since (queue,
        priority) taken from the route."""
        return cls(
            id=meta.id,
            channel=meta.channel,
            account=meta.account,
            queue=route.get("q", meta.queue),
            customer=meta.customer,
            priority=int(route.get("p", meta.priority)),
            state=state,
            agent=agent,
            created_at=meta.created_at,
            messages=messages,
            grade=route.get("g"),
            transfer_note=route.get("tn"),
            transferred_from=route.get("tf"),
            leave_message=bool(route.get("lm")),
            sla_s=route.get("sla"),
        )
