"""What follows an agent gone for good (past the grace period, or set offline by a
supervisor), once expire_agents.lua has taken back their offers and requeued their
conversations: web chat customers (any channel that shows live events) are told their agent
left and another will take over, the agent, if still connected, is told what is no longer
theirs, and revoked offers are counted. Both paths (the housekeeping sweep and the admin
action) do the same here."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.agents.protocol import Closed, OfferRevoked
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.observability.metrics import Metrics
from router.engine import Router
from router.results import AgentExpiry

# Why the customer's conversation went back to the queue (web chat: agent_left {reason}).
AGENT_GONE = "agent_gone"
# Why a connected agent lost an offer or a conversation: a supervisor set them offline.
AGENT_OFFLINE = "agent_offline"


async def follow_up_departures(
    events: Sequence[AgentExpiry],
    router: Router,
    metrics: Metrics,
    to_customers: ToCustomers,
    to_agents: ToAgents | None = None,
) -> None:
    """``to_agents``: tell the agents too (they may still have a socket); the grace period's
    agents have none."""
    requeued = [e.conversation_id for e in events if e.what == "requeued" and e.conversation_id]
    conversations = {c.id: c for c in await router.conversations(requeued)}
    for event in events:
        conv = event.conversation_id or ""
        if event.what == "revoked" and event.offer_id:
            route = await router.route(conv)
            metrics.offers.labels(route.queue if route else "", "revoked").inc()
            if to_agents is not None:
                await to_agents.send(
                    event.agent, OfferRevoked(offer_id=event.offer_id, reason=AGENT_OFFLINE)
                )
        elif event.what == "requeued":
            if to_agents is not None:
                await to_agents.send(
                    event.agent, Closed(conversation_id=conv, reason=AGENT_OFFLINE)
                )
            conversation = conversations.get(conv)
            if conversation is not None:
                await to_customers.notify(conversation, kind="agent_left", reason=AGENT_GONE)
