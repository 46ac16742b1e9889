"""What the router stores of a conversation beside its route, and the conversation an agent
sees, built from both. The message model itself is adapters/model.py."""

from __future__ import annotations

from datetime import datetime

import msgspec

from adapters.model import Conversation, ConversationState, Customer, Message
from router.deadlines import deadline_views
from router.route import Route


class ConversationMeta(msgspec.Struct, kw_only=True):
    """What is fixed when a conversation opens; stored once, msgpack-encoded."""

    id: str
    channel: str
    account: str
    customer: Customer
    queue: str
    priority: int
    created_at: datetime


def conversation_of(
    meta: ConversationMeta,
    state: ConversationState,
    agent: str | None,
    messages: list[Message],
    route: Route | None,
) -> Conversation:
    """Metadata fixed at opening, with what routing may have changed since (queue,
    priority) taken from the route."""
    opened = Conversation(
        id=meta.id,
        channel=meta.channel,
        account=meta.account,
        queue=meta.queue,
        customer=meta.customer,
        priority=meta.priority,
        state=state,
        agent=agent,
        created_at=meta.created_at,
        messages=messages,
    )
    if route is None:
        return opened
    return msgspec.structs.replace(
        opened,
        queue=route.queue,
        priority=route.priority,
        grade=route.grade,
        transfer_note=route.transfer_note,
        transferred_from=route.transferred_from,
        leave_message=bool(route.leave_message),
        sla_s=route.sla_s,
        deadlines=deadline_views(route.deadlines, state),
    )
