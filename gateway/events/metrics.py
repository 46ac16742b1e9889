"""The webhooks' Prometheus metrics, on the app's registry (gateway/observability/metrics.py
holds the rest). Labels come from the configuration (webhook names) and a fixed list."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

DELIVERY_OUTCOMES = ("delivered", "failed", "parked")


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry, webhooks: Iterable[str]) -> None:
        self.deliveries = Counter(
            "zhongtai_event_webhook_deliveries_total",
            "Lifecycle event deliveries to webhooks, by outcome: delivered (a 2xx answer), "
            "failed (an attempt that will be retried or parked), parked (given up, kept as a "
            "dead letter for the admin API's replay).",
            ["webhook", "outcome"],
            registry=registry,
        )
        self.lag = Gauge(
            "zhongtai_event_webhook_lag_events",
            "Events of the tenant's stream a webhook has not had acknowledged yet (unread and "
            "pending), as this process last saw it.",
            ["webhook"],
            registry=registry,
        )
        for name in webhooks:
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(name, outcome)
            self.lag.labels(name)
