"""Prometheus metrics. The registry belongs to the app, not the module, so that several
gateways can live in one test process. Names and labels are public (docs/design.md); every
metric is described in docs/operations.md. No agent, customer or conversation id is ever a
label: label values come from the configuration (queues, channels, adapters, statuses) or
from short fixed lists (outcomes, reasons, script names)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from gateway import __version__
from gateway.observability.buckets import (
    FIRST_RESPONSE_BUCKETS,
    HANDLE_BUCKETS,
    HTTP_BUCKETS,
    LATENCY_BUCKETS,
    decision_buckets,
    wait_buckets,
)

# No *_created series: one more series per labelled counter and histogram, which Prometheus
# stores as a gauge and nothing here uses. (A setting of the client library, process-wide.)
disable_created_metrics()

CSAT_SCORES = ("1", "2", "3", "4", "5")
# The label values of outcomes, fixed and public (docs/design.md, "Public interfaces").
INBOUND_OUTCOMES = ("accepted", "duplicate", "rejected")
OUTBOUND_OUTCOMES = ("sent", "failed")
OFFER_OUTCOMES = ("accepted", "declined", "timed_out", "revoked")
# Offers an agent answered, or let time out (a revoked offer was never decided on).
DECISION_OUTCOMES = ("accepted", "declined", "timed_out")
SLA_OUTCOMES = ("met", "breached")
ADAPTER_OPERATIONS = ("send", "notify", "webhook")
STATUS_CLASSES = ("2xx", "4xx", "5xx")
COMPONENTS = ("gateway", "adapters", "router", "presence")
# The web chat's limits (adapters/webchat), shown at 0 before the first refusal.
WEBCHAT_LIMITS = (
    "webchat.messages_per_minute",
    "webchat.new_visitors_per_minute",
    "webchat.max_sockets_per_visitor",
    "webchat.uploads.per_minute",
    "webchat.hello_timeout_s",
)


class Metrics:
    def __init__(
        self, sla_thresholds: Iterable[float] = (), offer_timeout_s: float | None = None
    ) -> None:
        """``sla_thresholds`` (see the function of that name) become bucket boundaries of the
        wait histogram, ``offer_timeout_s`` one of the offer decision time's."""
        r = self.registry = CollectorRegistry(auto_describe=True)
        self._primed = False
        # Memory, CPU, file descriptors (process_*) and the Python version (python_info):
        # a registry of our own gets them only when asked.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "zhongtai_build_info", "Always 1; the version of the gateway.", ["version"], registry=r
        )
        self.build_info.labels(__version__).set(1)

        # Traffic.
        self.inbound = Counter(
            "zhongtai_inbound_messages_total",
            "Customer messages received, by outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.replica_ack_timeouts = Counter(
            "zhongtai_replica_ack_timeouts_total",
            "Stored messages and replies fewer than [redis] min_replica_acks replicas confirmed "
            "in time (the client was told not_replicated, and sends again).",
            registry=r,
        )
        self.outbound = Counter(
            "zhongtai_outbound_messages_total",
            "Agent replies sent to channels, by outcome.",
            ["channel", "outcome"],
            registry=r,
        )
        self.webhook_seconds = Histogram(
            "zhongtai_webhook_seconds",
            "Handling time of HTTP requests on the public port (websocket upgrades left out), "
            "by the adapter whose path prefix they use.",
            ["adapter"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.webhook_requests = Counter(
            "zhongtai_webhook_requests_total",
            "HTTP requests on the public port (websocket upgrades left out), by adapter and "
            "status class (2xx, 3xx, 4xx, 5xx).",
            ["adapter", "status"],
            registry=r,
        )
        self.adapter_errors = Counter(
            "zhongtai_adapter_errors_total",
            "Adapter failures: send (an unexpected exception, not a refusal), notify, "
            "webhook (a 5xx answer or an exception).",
            ["adapter", "operation"],
            registry=r,
        )

        # Queues (read from Redis at scrape time).
        self.queue_depth = Gauge(
            "zhongtai_queue_depth",
            "Conversations waiting in the queue (read from Redis).",
            ["queue"],
            registry=r,
        )
        self.queue_oldest_wait = Gauge(
            "zhongtai_queue_oldest_wait_seconds",
            "How long the longest-waiting conversation has waited (read from Redis).",
            ["queue"],
            registry=r,
        )
        self.queue_sla = Gauge(
            "zhongtai_queue_sla_seconds",
            "The queue's configured SLA (sla_s): the wait within which an accept counts as met.",
            ["queue"],
            registry=r,
        )
        self.queue_available_agents = Gauge(
            "zhongtai_queue_available_agents",
            "Connected agents with status available who are eligible for the queue (skills, "
            "and capacity on one of its channels), busy or not (read from Redis).",
            ["queue"],
            registry=r,
        )
        self.load_ratio = Gauge(
            "zhongtai_agent_load_ratio",
            "Occupancy of the queue's eligible connected agents: open and offered "
            "conversations on the queue's channels over their capacity there (read from Redis).",
            ["queue"],
            registry=r,
        )

        # Waits, offers and service level.
        self.wait = Histogram(
            "zhongtai_wait_seconds",
            "From enqueue to an agent's accept.",
            ["queue"],
            buckets=wait_buckets(sla_thresholds),
            registry=r,
        )
        self.first_response = Histogram(
            "zhongtai_first_response_seconds",
            "From a conversation's first customer message to the first agent reply.",
            ["channel"],
            buckets=FIRST_RESPONSE_BUCKETS,
            registry=r,
        )
        self.handle = Histogram(
            "zhongtai_handle_seconds",
            "From the accept of the agent who held the conversation to its close.",
            ["queue"],
            buckets=HANDLE_BUCKETS,
            registry=r,
        )
        self.closed = Counter(
            "zhongtai_conversations_closed_total",
            "Conversations closed, by reason and by the close reason the agent gave "
            "(a configured reason, none or other).",
            ["queue", "reason", "close_reason"],
            registry=r,
        )
        self.offers = Counter(
            "zhongtai_offers_total",
            "Offers to agents, by outcome.",
            ["queue", "outcome"],
            registry=r,
        )
        self.offer_decision = Histogram(
            "zhongtai_offer_decision_seconds",
            "From an offer to the agent's answer, by outcome (accepted, declined; timed_out "
            "counts the offer timeout).",
            ["queue", "outcome"],
            buckets=decision_buckets(offer_timeout_s),
            registry=r,
        )
        self.sla = Counter(
            "zhongtai_sla_total",
            "Conversations accepted within their queue's SLA, or not.",
            ["queue", "outcome"],
            registry=r,
        )
        self.escalations = Counter(
            "zhongtai_escalations_total",
            "Escalation steps, priority ageing and maximum-wait actions applied.",
            ["queue", "kind"],
            registry=r,
        )
        self.complaint_reminders = Counter(
            "zhongtai_complaint_reminders_total",
            "Reminders of a graded complaint's deadline ahead of it, by deadline.",
            ["queue", "grade", "deadline"],
            registry=r,
        )
        self.complaint_deadlines_missed = Counter(
            "zhongtai_complaint_deadlines_missed_total",
            "Graded complaints' deadlines missed, by deadline and the grade's action.",
            ["queue", "grade", "deadline", "action"],
            registry=r,
        )
        # What follows a close, by queue only (per agent: the KPI reports of the admin API).
        self.csat_asked = Counter(
            "zhongtai_csat_asked_total",
            "Closed conversations whose customer was asked to rate them (CSAT).",
            ["queue"],
            registry=r,
        )
        self.csat_ratings = Counter(
            "zhongtai_csat_ratings_total",
            "CSAT ratings received, by score (1 to 5).",
            ["queue", "score"],
            registry=r,
        )
        self.qa_scored = Counter(
            "zhongtai_qa_scored_total",
            "QA scores stored by team leads (a conversation scored again counts again).",
            ["queue"],
            registry=r,
        )
        self.overflows = Counter(
            "zhongtai_overflows_total",
            "Escalation steps that let the overflow queue's agents take the conversation.",
            ["queue", "to"],
            registry=r,
        )

        # Agents and sockets.
        self.agents = Gauge(
            "zhongtai_agents",
            "Configured agents by status (read from Redis).",
            ["status"],
            registry=r,
        )
        self.websockets = Gauge(
            "zhongtai_websocket_connections",
            "Open websockets on this process.",
            ["kind"],
            registry=r,
        )

        # The public port's guards (gateway/guard).
        self.connections_open = Gauge(
            "zhongtai_public_connections",
            "Requests in progress and open sockets on the public port of this process.",
            registry=r,
        )
        self.connections_refused = Counter(
            "zhongtai_connections_refused_total",
            "Connections refused by a cap: scope address (per client address) or total.",
            ["scope"],
            registry=r,
        )
        self.limited = Counter(
            "zhongtai_limited_total",
            "Clients refused by a limit of a channel's, by its configuration key "
            "(webchat.messages_per_minute, ...); hello timeouts included.",
            ["limit"],
            registry=r,
        )
        self.slow_clients = Counter(
            "zhongtai_slow_clients_closed_total",
            "Connections closed for not sending their request headers, body or hello in time.",
            ["phase"],
            registry=r,
        )

        # The gateway's own work.
        self.dispatch_seconds = Histogram(
            "zhongtai_dispatch_seconds",
            "Duration of one routing call (the dispatch script's round trip): the routing "
            "decision time.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.routed = Counter(
            "zhongtai_offers_made_total",
            "Offers made by this process's routing calls.",
            registry=r,
        )
        self.script_seconds = Histogram(
            "zhongtai_redis_script_seconds",
            "Duration of one Lua script call on Redis, round trip included.",
            ["script"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.script_errors = Counter(
            "zhongtai_redis_script_errors_total",
            "Lua script calls that raised (a Redis error, a timeout, a lost connection).",
            ["script"],
            registry=r,
        )
        self.errors_logged = Counter(
            "zhongtai_errors_logged_total",
            "Log records at level error or above, by the top-level package that wrote them.",
            ["component"],
            registry=r,
        )

    def prime(
        self, queues: Iterable[str], channels: Iterable[str], adapters: Iterable[str]
    ) -> None:
        """Create, at 0, the series of every known queue, channel and adapter that rules and
        dashboards divide or take increase() of: a series born at 1 would hide its first
        event from increase() and rate(), and a missing one makes a ratio vanish."""
        if self._primed:
            return
        self._primed = True
        for queue in queues:
            for outcome in SLA_OUTCOMES:
                self.sla.labels(queue, outcome)
            for outcome in OFFER_OUTCOMES:
                self.offers.labels(queue, outcome)
            for outcome in DECISION_OUTCOMES:
                self.offer_decision.labels(queue, outcome)
            self.wait.labels(queue)
            self.handle.labels(queue)
            self.csat_asked.labels(queue)
            self.qa_scored.labels(queue)
            for score in CSAT_SCORES:
                self.csat_ratings.labels(queue, score)
        for channel in channels:
            for outcome in INBOUND_OUTCOMES:
                self.inbound.labels(channel, outcome)
            for outcome in OUTBOUND_OUTCOMES:
                self.outbound.labels(channel, outcome)
            self.first_response.labels(channel)
        for adapter in adapters:
            for operation in ADAPTER_OPERATIONS:
                self.adapter_errors.labels(adapter, operation)
            for status in STATUS_CLASSES:
                self.webhook_requests.labels(adapter, status)
        for component in COMPONENTS:
            self.errors_logged.labels(component)
        for scope in ("address", "total"):
            self.connections_refused.labels(scope)
        for phase in ("headers", "body", "hello"):
            self.slow_clients.labels(phase)
        for limit in WEBCHAT_LIMITS:
            self.limited.labels(limit)

    def timer_fired(self, queue: str, kind: str, detail: str, spec: object | None) -> None:
        """Count an escalation or ageing step, and an overflow when the escalation step
        (``detail``, from 1) lets the overflow queue's agents in."""
        self.escalations.labels(queue, kind).inc()
        if kind != "escalated" or spec is None or not detail.isdigit():
            return
        steps = getattr(spec, "escalation", [])
        index = int(detail) - 1
        overflow = getattr(spec, "overflow", None)
        if 0 <= index < len(steps) and steps[index].overflow and overflow:
            self.overflows.labels(queue, overflow).inc()
