"""The process's one dispatcher task. Anything that may let a waiting conversation meet a
free agent (a message queued, an agent available, an offer declined or expired, a close)
asks for a dispatch; requests made while one runs coalesce into the next run, so a burst
of them costs one ``dispatch.lua`` round, not one each. The decisions are made in Lua
(router/); this module only hands them to the agents' sessions."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from adapters.loops import Outage, stop_if_cancelled
from gateway.agents.protocol import Assigned, Offer
from gateway.flows.clock import Clock
from gateway.flows.outbound import ToAgents
from gateway.flows.outcomes import OfferOutcomes
from gateway.flows.records import notes_of
from gateway.observability.metrics import Metrics
from gateway.supervisors.tap import ChangeTap
from router.config import RoutingConfig
from router.engine import Router
from router.placement import Placer
from router.results import OfferMade

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Dispatcher:
    router: Router
    placer: Placer
    metrics: Metrics
    routing: RoutingConfig
    to_agents: ToAgents
    outcomes: OfferOutcomes
    clock: Clock
    tap: ChangeTap = field(default_factory=ChangeTap)
    _wanted: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def request(self, changed: bool = True) -> None:
        """Ask the dispatcher task to run; requests made while it runs coalesce into one.
        Whatever asks for a dispatch changed something supervisors' wallboards show, except
        the periodic sweep, which says so with ``changed=False``."""
        self._wanted.set()
        if changed:
            self.tap.changed()

    async def run(self) -> None:
        """The dispatcher task: one per process, started by the app."""
        outage = Outage(log, "dispatch")
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.dispatch()
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)  # the next request retries (housekeeping asks each second)
            stop_if_cancelled()

    async def dispatch(self) -> list[OfferMade]:
        """Route until a round decides less than a full batch: nothing more can be placed."""
        made: list[OfferMade] = []
        while True:
            now = self.clock()
            started = time.perf_counter()
            decisions = await self.router.dispatch(now, self.placer.open_queues(now))
            self.metrics.dispatch_seconds.observe(time.perf_counter() - started)
            if not decisions:
                return made
            self.metrics.routed.inc(len(decisions))
            made.extend(decisions)
            await self._deliver(decisions)
            self.tap.changed()
            if len(decisions) < self.routing.dispatch_batch:
                return made

    async def _deliver(self, decisions: list[OfferMade]) -> None:
        """Each decision to its agent: an assignment at once, or an offer to answer, with
        the conversation's notes (a transferred conversation's earlier agents' notes)."""
        ids = [d.conversation_id for d in decisions]
        conversations = {c.id: c for c in await self.router.conversations(ids)}
        notes = await notes_of(self.router, ids)
        timeout = self.routing.offer_timeout_s
        for decision in decisions:
            conversation = conversations.get(decision.conversation_id)
            if conversation is None:
                continue
            if decision.assigned:
                frame = Assigned(conversation=conversation, notes=notes.get(conversation.id, []))
                await self.to_agents.send_on(decision.agent, decision.node, frame)
                await self.outcomes.on_assigned(
                    conversation, decision.agent, decision.queue, decision.enqueued_ms
                )
            else:
                offer = Offer(
                    offer_id=decision.offer_id or "",
                    conversation=conversation,
                    expires_in_s=timeout,
                    notes=notes.get(conversation.id, []),
                )
                await self.to_agents.send_on(decision.agent, decision.node, offer)
