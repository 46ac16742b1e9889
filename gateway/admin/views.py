"""What the admin API answers, as msgspec structs, and the pure functions that build them
from a snapshot (snapshots.py): queues and agents as GET /api/queues and /api/agents show
them, a conversation with its route. Anything that must show the numbers the API shows, such
as the supervisors' wallboard, calls these same builders. docs/admin-api.md documents every
field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import msgspec

from adapters.model import Conversation, Deadline
from gateway.admin.quality_views import CsatView
from gateway.admin.snapshots import (
    AgentSnapshot,
    ConversationSnapshot,
    Offer,
    QueueSnapshot,
)
from gateway.config import AgentConfig
from gateway.flows.clock import at_ms
from gateway.services import Services
from router.config import QueueConfig
from router.eligibility import share
from router.route import Route
from router.waiting import WaitingFacts, WaitingReason, waiting_reason


class Ok(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    conversation_id: str | None = None
    agent: str | None = None
    status: str | None = None


class WaitingConversation(msgspec.Struct, kw_only=True):
    conversation_id: str
    wait_s: float
    priority: int
    waiting_reason: WaitingReason | None  # why it waits (router/waiting.py)


class QueueView(msgspec.Struct, kw_only=True):
    name: str
    channels: list[str]
    skills: dict[str, int]
    strategy: str
    priority: int
    sla_s: float
    open_now: bool
    depth: int
    oldest_wait_s: float | None
    agents: dict[str, int]  # eligible agents by status
    waiting: list[WaitingConversation]  # the first ones, in routing order
    accept_rate_per_min: float | None  # from the recent accepts; None: too few to tell


class QueuesResponse(msgspec.Struct):
    queues: list[QueueView]


class OfferView(msgspec.Struct, kw_only=True):
    offer_id: str
    conversation_id: str
    expires_in_s: float


class AgentView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: str
    status_reason: str | None
    connected: str | None  # the node holding the agent's socket
    skills: dict[str, int]
    load: dict[str, int]
    capacity: dict[str, int]
    max_total: int | None
    conversations: list[str]
    offers: list[OfferView]


class AgentsResponse(msgspec.Struct):
    agents: list[AgentView]


class PendingOffer(msgspec.Struct, kw_only=True):
    offer_id: str
    agent: str
    expires_in_s: float


class RouteFacts(msgspec.Struct, kw_only=True):
    queue: str
    priority: int
    enqueued_at: datetime | None
    waiting_s: float | None  # while queued or offered
    sla_s: float | None
    escalation_step: int
    required_skills: dict[str, int] | None
    overflow_queues: list[str]
    preferred_agent: str | None
    preferred_until: datetime | None
    leave_message: bool


class ConversationView(msgspec.Struct, kw_only=True):
    conversation: Conversation
    offer: PendingOffer | None
    route: RouteFacts | None
    waiting_reason: WaitingReason | None  # None: not waiting (assigned or closed)
    deadlines: list[Deadline] = []  # a graded complaint's (超时提醒), with what became of each
    csat: CsatView | None = None  # the customer's rating, filled in by the API's handler


def seconds_between(later_ms: int, earlier_ms: int) -> float:
    return round(max(0.0, (later_ms - earlier_ms) / 1000), 3)


def accept_rate_per_min(accepts_ms: list[int]) -> float | None:
    """From the queue's recent accept times (newest first), as positions.py estimates waits."""
    if len(accepts_ms) < 2 or accepts_ms[0] <= accepts_ms[-1]:
        return None
    span_min = (accepts_ms[0] - accepts_ms[-1]) / 60_000
    return round((len(accepts_ms) - 1) / span_min, 2)


def status_counts(
    services: Services, queue: QueueConfig, statuses: Mapping[str, str]
) -> dict[str, int]:
    """The configured agents eligible for ``queue``, by status, every status counted."""
    counts = dict.fromkeys(services.actions.statuses(), 0)
    for agent in services.config.agents:
        if share(agent, queue) is not None:
            status = statuses.get(agent.id, "offline")
            counts[status] = counts.get(status, 0) + 1
    return counts


def waiting_facts(
    services: Services,
    now_ms: int,
    open_queues: Iterable[str],
    statuses: Mapping[str, str],
    loads: Mapping[str, Mapping[str, int]],
) -> WaitingFacts:
    """What waiting reasons are worked out from, beside each conversation's own state."""
    routing = services.config.routing
    return WaitingFacts(
        now_ms=now_ms,
        open_queues=frozenset(open_queues),
        queues=services.switchboard.placer.queues,
        agents=services.config.agents,
        statuses=statuses,
        loads=loads,
        offer_timeout_ms=int(routing.offer_timeout_s * 1000),
        decline_cooldown_ms=int(routing.decline_cooldown_s * 1000),
    )


def queue_view(
    services: Services, queue: QueueConfig, snap: QueueSnapshot, facts: WaitingFacts | None = None
) -> QueueView:
    stat = snap.stats.get(queue.name)
    oldest = stat.oldest_enqueued_ms if stat else None
    if facts is None:
        facts = waiting_facts(services, snap.now_ms, snap.open_queues, snap.statuses, snap.loads)
    return QueueView(
        name=queue.name,
        channels=queue.channels,
        skills=dict(queue.skills),
        strategy=queue.strategy,
        priority=queue.priority,
        sla_s=queue.sla_s,
        open_now=queue.name in snap.open_queues,
        depth=stat.depth if stat else 0,
        oldest_wait_s=None if oldest is None else seconds_between(snap.now_ms, oldest),
        agents=status_counts(services, queue, snap.statuses),
        waiting=[
            WaitingConversation(
                conversation_id=c,
                wait_s=seconds_between(snap.now_ms, route.enqueued_ms),
                priority=route.priority,
                waiting_reason=waiting_reason("queued", route, snap.declined.get(c, {}), facts),
            )
            for c, route in snap.waiting.get(queue.name, [])
        ],
        accept_rate_per_min=accept_rate_per_min(snap.accepts.get(queue.name, [])),
    )


def queue_views(services: Services, snap: QueueSnapshot) -> list[QueueView]:
    """Every configured queue as GET /api/queues shows it."""
    facts = waiting_facts(services, snap.now_ms, snap.open_queues, snap.statuses, snap.loads)
    return [queue_view(services, queue, snap, facts) for queue in services.config.queues]


def agent_view(agent: AgentConfig, snap: AgentSnapshot) -> AgentView:
    node = snap.nodes.get(agent.id)
    offers = [
        OfferView(
            offer_id=offer_id,
            conversation_id=conversation_id,
            expires_in_s=seconds_between(due, snap.now_ms),
        )
        for offer_id, conversation_id, offered_to, due in snap.offers
        if offered_to == agent.id
    ]
    return AgentView(
        id=agent.id,
        name=agent.display_name,
        status=snap.statuses.get(agent.id, "offline"),
        # Why the status was set, while it still applies: a gone socket means offline.
        status_reason=snap.reasons.get(agent.id) if node else None,
        connected=node,
        skills=dict(agent.skills),
        load={c: snap.loads.get(agent.id, {}).get(c, 0) for c in agent.capacity}
        | snap.loads.get(agent.id, {}),
        capacity=dict(agent.capacity),
        max_total=agent.max_total,
        conversations=snap.conversations.get(agent.id, []),
        offers=sorted(offers, key=lambda o: o.expires_in_s),
    )


def agent_views(services: Services, snap: AgentSnapshot) -> list[AgentView]:
    """Every configured agent as GET /api/agents shows them."""
    return [agent_view(agent, snap) for agent in services.config.agents]


def route_facts(
    services: Services, conversation: Conversation, route: Route, now_ms: int
) -> RouteFacts:
    queue = services.switchboard.placer.queues.get(route.queue)
    preferred_until = route.preferred_until_ms
    waiting = conversation.state in ("queued", "offered")
    return RouteFacts(
        queue=route.queue,
        priority=route.priority,
        enqueued_at=at_ms(route.enqueued_ms),
        waiting_s=seconds_between(now_ms, route.enqueued_ms) if waiting else None,
        sla_s=route.sla_s if route.sla_s is not None else queue.sla_s if queue else None,
        escalation_step=route.escalation_steps,
        required_skills=(
            route.skills if route.skills is not None else dict(queue.skills) if queue else None
        ),
        overflow_queues=route.overflow_queues,
        preferred_agent=route.preferred_agent,
        preferred_until=None if preferred_until is None else at_ms(preferred_until),
        leave_message=bool(route.leave_message),
    )


def pending_offer(offers: list[Offer], conversation_id: str, now_ms: int) -> PendingOffer | None:
    for offer_id, conv, agent, due in offers:
        if conv == conversation_id:
            return PendingOffer(
                offer_id=offer_id, agent=agent, expires_in_s=seconds_between(due, now_ms)
            )
    return None


def conversation_view(services: Services, snap: ConversationSnapshot) -> ConversationView:
    conversation, route = snap.conversation, snap.route
    facts = waiting_facts(services, snap.now_ms, snap.open_queues, snap.statuses, snap.loads)
    return ConversationView(
        conversation=conversation,
        offer=pending_offer(snap.offers, conversation.id, snap.now_ms),
        route=None if route is None else route_facts(services, conversation, route, snap.now_ms),
        waiting_reason=waiting_reason(conversation.state, route, snap.declined, facts),
        deadlines=conversation.deadlines,
    )
