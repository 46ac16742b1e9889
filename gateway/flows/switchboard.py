"""The flows between customers, the router and agents, built once per process and named in
one place. Each flow is its own module, and they depend on each other in one direction:

    clock, records <- outbound <- aftercare, departures, outcomes <- dispatcher
        <- ingest, closing, deadlines <- timers

``records`` encodes what is kept beside routing (internal notes, customers' earlier
conversations), ``outbound`` sends to customers (``ToCustomers``) and agents
(``ToAgents``), ``departures`` tells them what an agent gone for good left behind,
``aftercare`` asks for ratings after a close and picks conversations for QA,
``outcomes`` counts what became of offers and assignments, ``dispatcher``
is the one dispatcher task, ``ingest`` takes customer messages in, ``closing`` closes
conversations, ``deadlines`` tells of a graded complaint's reminders and missed deadlines, and
``timers`` acts on what time does. Every routing decision itself is one
Lua call (router/); what agents do is in gateway/agents/actions.py. Callers (the app, the
adapter host, agent actions, housekeeping, the admin API) hold a ``Switchboard`` and need
not know which module does what."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.contract import Adapter
from gateway.agents.sessions import AgentSessions
from gateway.config import AgentConfig, Config
from gateway.flows.aftercare import Aftercare
from gateway.flows.clock import Clock, wall_clock_ms
from gateway.flows.closing import Closing
from gateway.flows.deadlines import DeadlineAlerts
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.ingest import Ingester
from gateway.flows.outbound import ToAgents, ToCustomers
from gateway.flows.outcomes import OfferOutcomes
from gateway.flows.timers import Timers
from gateway.observability.metrics import Metrics
from gateway.redis.acks import ReplicaAcks
from gateway.supervisors.tap import ChangeTap
from presence.registry import Presence
from router.engine import Router
from router.placement import Placer


class Switchboard:
    """The parts, wired once; the app owns it (no part is global)."""

    def __init__(
        self,
        config: Config,
        router: Router,
        presence: Presence,
        sessions: AgentSessions,
        metrics: Metrics,
        adapters: Mapping[str, Adapter],
        clock: Clock = wall_clock_ms,
        tap: ChangeTap | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.presence = presence
        self.sessions = sessions
        self.metrics = metrics
        self.adapters = adapters
        self.clock = clock
        # What supervisors' sockets hear of: every flow tells the one tap.
        self.tap = tap if tap is not None else ChangeTap()
        core = config.core
        self.placer = Placer(
            core.queues, core.rules, core.grades, core.hours, core.routing.default_queue
        )
        self.agents: dict[str, AgentConfig] = {a.id: a for a in config.agents}
        # WAIT for replicas before a stored message is acknowledged ([redis] min_replica_acks).
        self.acks = ReplicaAcks(router.redis, config.redis, metrics.replica_ack_timeouts)
        self.to_customers = ToCustomers(router, metrics, adapters, clock, self.tap)
        self.to_agents = ToAgents(router, presence, sessions)
        self.aftercare = Aftercare(
            router=router,
            to_customers=self.to_customers,
            to_agents=self.to_agents,
            clock=clock,
            csat=config.core.csat,
            qa=config.core.qa,
            queues={q.name: q for q in config.queues},
            keep_s=config.routing.closed_retention_s,
            metrics=metrics,
        )
        self.outcomes = OfferOutcomes(
            router=router,
            placer=self.placer,
            metrics=metrics,
            routing=config.routing,
            agents=self.agents,
            to_customers=self.to_customers,
            clock=clock,
            tap=self.tap,
        )
        self.dispatcher = Dispatcher(
            router=router,
            placer=self.placer,
            metrics=metrics,
            routing=config.routing,
            to_agents=self.to_agents,
            outcomes=self.outcomes,
            clock=clock,
            tap=self.tap,
        )
        self.ingester = Ingester(
            router=router,
            placer=self.placer,
            metrics=metrics,
            to_customers=self.to_customers,
            to_agents=self.to_agents,
            dispatcher=self.dispatcher,
            clock=clock,
            tap=self.tap,
            acks=self.acks,
            aftercare=self.aftercare,
        )
        self.closing = Closing(
            router=router,
            metrics=metrics,
            to_customers=self.to_customers,
            to_agents=self.to_agents,
            dispatcher=self.dispatcher,
            clock=clock,
            tap=self.tap,
            agents=self.agents,
            settings=config.core.conversations,
            aftercare=self.aftercare,
        )
        self.timers = Timers(
            router=router,
            placer=self.placer,
            metrics=metrics,
            grace_s=config.presence.grace_s,
            to_customers=self.to_customers,
            to_agents=self.to_agents,
            outcomes=self.outcomes,
            dispatcher=self.dispatcher,
            closing=self.closing,
            clock=clock,
            deadlines=DeadlineAlerts(
                router=router,
                metrics=metrics,
                to_agents=self.to_agents,
                dispatcher=self.dispatcher,
                tap=self.tap,
                clock=clock,
            ),
        )

        # What callers call: each name is the part's own method, so there is one
        # definition to read and one place for a hook.
        self.ingest = self.ingester.ingest
        self.reclassify = self.ingester.reclassify
        self.adapter_for = self.to_customers.adapter_for
        self.notify = self.to_customers.notify
        self.send_to_customer = self.to_customers.send
        self.auto_reply = self.to_customers.auto_reply
        self.tell_agent = self.to_agents.tell
        self.revoke = self.to_agents.revoke
        self.request_dispatch = self.dispatcher.request
        self.run_dispatcher = self.dispatcher.run
        self.dispatch = self.dispatcher.dispatch
        self.on_assigned = self.outcomes.on_assigned
        self.offer_decided = self.outcomes.offer_decided
        self.expire_offers = self.timers.expire_offers
        self.expire_agents = self.timers.expire_agents
        self.fire_timers = self.timers.fire
        self.close_conversation = self.closing.close
