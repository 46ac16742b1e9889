"""The welcome an agent socket begins with, and gets again whenever the gateway resyncs it
(the node bus came back after a loss, or a frame came for a conversation the client was
never told of): one builder, so that a resync is exactly what a reconnect would show."""

from __future__ import annotations

from gateway.agents.protocol import AgentInfo, Offer, Welcome
from gateway.config import AgentConfig
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


async def fresh_welcome(services: Services, agent: AgentConfig) -> tuple[Welcome, list[Offer]]:
    """A resync's welcome: the agent's status as it stands."""
    return await build_welcome(services, agent, await services.presence.status(agent.id))
