"""The welcome an agent socket begins with, and gets again whenever the gateway resyncs it
(the node bus came back after a loss, or a frame came for a conversation the client was
never told of): one builder, so that a resync is what a reconnect would show, except that a
resync's conversations reach back to the first customer message the client missed, however
many came since (a reconnect shows the recent ones: the client starts afresh)."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.model import Conversation, Message
from gateway.agents.protocol import AgentInfo, Offer, Welcome
from gateway.agents.sessions import Holding
from gateway.config import AgentConfig
from gateway.flows.clock import at_ms
from gateway.services import Services


async def build_welcome(
    services: Services, agent: AgentConfig, status: str
) -> tuple[Welcome, list[Offer]]:
    """The agent's open conversations with their messages and notes, as Redis has them
    now, and the offers still waiting for them (with the time left)."""
    actions = services.actions
    conversations, pending = await actions.welcome_state(agent.id)
    notes = await actions.notes([c.id for c in conversations] + [p[1].id for p in pending])
    info = AgentInfo(
        id=agent.id,
        name=agent.display_name,
        shown_as=agent.shown_to_customers,
        status=status,
        capacity=agent.capacity,
        statuses=actions.statuses(),
    )
    welcome = Welcome(
        agent=info,
        conversations=conversations,
        canned_replies=actions.canned_replies(),
        close_reasons=actions.close_reasons(),
        notes={c.id: notes[c.id] for c in conversations if c.id in notes},
        queue_sla_s={q.name: q.sla_s for q in services.config.queues},
    )
    offers = [
        Offer(
            offer_id=offer_id,
            conversation=conversation,
            expires_in_s=expires_in_s,
            notes=notes.get(conversation.id, []),
        )
        for offer_id, conversation, expires_in_s in pending
    ]
    return welcome, offers


async def fresh_welcome(
    services: Services, agent: AgentConfig, holdings: Mapping[str, Holding]
) -> tuple[Welcome, list[Offer]]:
    """A resync's welcome: the agent's status as it stands, and in each conversation every
    message from the first one the client (which holds ``holdings``) has missed."""
    welcome, offers = await build_welcome(services, agent, await services.presence.status(agent.id))
    recent = services.config.routing.recent_messages
    untold_ids = [c.id for c in welcome.conversations if c.id not in holdings]
    untold = await _untold(services, untold_ids, agent)
    for conversation in welcome.conversations:
        holding = holdings.get(conversation.id) or untold.get(conversation.id)
        if holding is not None and _may_reach_back(conversation, holding, recent):
            earlier = await services.router.messages_before_recent(conversation.id)
            conversation.messages = _from_first_missed(earlier, conversation, holding, recent)
    return welcome, offers


async def _untold(services: Services, ids: list[str], agent: AgentConfig) -> dict[str, Holding]:
    """Of the conversations whose assigned the client missed, those it lacks what came after
    the agent got them (known for the first assignment; a transferred one shows its recent
    messages). Their routes in one read, however many the resync brings."""
    return {
        conversation_id: Holding("", set(), since_ms=route.first_assigned_ms)
        for conversation_id, route in (await services.router.routes(ids)).items()
        if route.first_agent == agent.id and route.first_assigned_ms is not None
    }


def _may_reach_back(conversation: Conversation, holding: Holding, recent: int) -> bool:
    """Only a full window of recent messages beginning with one the client lacks can hide
    older ones it lacks too."""
    messages = conversation.messages
    return len(messages) >= recent and messages[0].id not in holding.ids


def _from_first_missed(
    earlier: list[Message], conversation: Conversation, holding: Holding, recent: int
) -> list[Message]:
    """The messages from the first one the client lacks, or the recent ones when it lacks
    none of the earlier ones."""
    messages = earlier + conversation.messages
    return messages[min(_first_missed(messages, holding, recent), len(earlier)) :]


def _first_missed(messages: list[Message], holding: Holding, recent: int) -> int:
    if holding.since_ms is not None:
        # Never told of it: it lacks the assigned frame's recent messages and all after.
        since = at_ms(holding.since_ms)
        told = next((i for i, m in enumerate(messages) if m.sent_at >= since), len(messages))
        return max(0, told - recent)
    ids = [m.id for m in messages]
    start = ids.index(holding.since) + 1 if holding.since in ids else 0
    lacking = (
        i
        for i in range(start, len(messages))
        if messages[i].direction == "in" and messages[i].id not in holding.ids
    )
    return next(lacking, len(messages))
