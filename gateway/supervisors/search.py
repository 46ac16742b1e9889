"""Finding open conversations for a lead: every open conversation of their queues, read in
batches with its recent messages (router.reads), filtered by what the search frame names.
Filters are AND-ed, case-insensitive substrings; ``text`` looks in the recent messages each
conversation carries (as an agent's welcome does), not the whole history."""

from __future__ import annotations

from collections.abc import Sequence

from adapters.model import Conversation
from gateway.services import Services
from gateway.supervisors.protocol import ConversationSummary, CustomerSummary, Search
from gateway.supervisors.scope import Scope
from router.reads import text as as_text
from router.route import Route

BATCH = 200
MAX_RESULTS = 100
STATES = {"queued": "waiting", "offered": "offered", "assigned": "assigned"}


def summary_of(conversation: Conversation, route: Route | None) -> ConversationSummary:
    last = next((m.text for m in reversed(conversation.messages) if m.text), None)
    return ConversationSummary(
        id=conversation.id,
        channel=conversation.channel,
        queue=route.queue if route else conversation.queue,
        state=STATES.get(conversation.state, conversation.state),
        agent=conversation.agent,
        customer=CustomerSummary(id=conversation.customer.id, name=conversation.customer.name),
        enqueued_ms=route.enqueued_ms if route else None,
        last_text=last,
    )


def _has(value: str | None, wanted: str | None) -> bool:
    return wanted is None or (value is not None and wanted.casefold() in value.casefold())


def matches(services: Services, conversation: Conversation, queue: str, frame: Search) -> bool:
    customer = conversation.customer
    agent = services.switchboard.agents.get(conversation.agent or "")
    return (
        (_has(customer.id, frame.customer) or _has(customer.name, frame.customer))
        and (
            _has(conversation.agent, frame.agent)
            or (agent is not None and _has(agent.display_name, frame.agent))
        )
        and _has(queue, frame.queue)
        and _has(conversation.channel, frame.channel)
        and (frame.text is None or any(_has(m.text, frame.text) for m in conversation.messages))
    )


async def open_conversation_ids(services: Services) -> list[str]:
    router = services.router
    states = await services.redis.hgetall(router.keys.state)
    return [as_text(c) for c, state in states.items() if as_text(state) in STATES]


async def _read(services: Services, ids: Sequence[str]) -> list[tuple[Conversation, Route | None]]:
    conversations = await services.router.conversations(ids)
    routes = await services.router.routes([c.id for c in conversations])
    return [(c, routes.get(c.id)) for c in conversations]


async def search(services: Services, scope: Scope, frame: Search) -> list[ConversationSummary]:
    """The lead's open conversations that match, longest waiting first."""
    ids = await open_conversation_ids(services)
    found: list[ConversationSummary] = []
    for start in range(0, len(ids), BATCH):
        for conversation, route in await _read(services, ids[start : start + BATCH]):
            queue = route.queue if route else conversation.queue
            if scope.sees_queue(queue) and matches(services, conversation, queue, frame):
                found.append(summary_of(conversation, route))
    found.sort(key=lambda s: (s.enqueued_ms or 0, s.id))
    return found[:MAX_RESULTS]
