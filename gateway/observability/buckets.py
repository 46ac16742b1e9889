"""Histogram bucket boundaries, apart from the metrics because they follow the configuration
rather than the code: every configured SLA (``sla_s``) and the offer timeout is a boundary,
so that a query such as ``le="25.0"`` counts exactly what it says (docs/operations.md), and
each histogram's defaults fit what it measures (milliseconds for Redis calls, days for
email). Pure functions of the configuration, testable without a registry."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import Config

# On the SLA thresholds ops use, so that "answered within 20 s" is a bucket boundary; every
# SLA of the configuration (queues' and grades' sla_s) is added to these (wait_buckets).
WAIT_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600)
# An agent reading an offer and answering it: seconds, up to the offer timeout (which is
# added to these, see decision_buckets).
OFFER_DECISION_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60)
# Email and reviews are answered in hours, chats in seconds.
FIRST_RESPONSE_BUCKETS = (
    5,
    10,
    20,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    172800,
)
# From an agent's accept to the close: minutes for chats, hours or days for email and reviews.
HANDLE_BUCKETS = (
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
    172800,
    604800,
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# A webhook may wait for Redis and, for some channels, call the channel's API back.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _with_thresholds(defaults: Iterable[float], thresholds: Iterable[float]) -> tuple[float, ...]:
    extra = {float(t) for t in thresholds if math.isfinite(t) and t > 0}
    return tuple(sorted({float(b) for b in defaults} | extra))


def wait_buckets(sla_thresholds: Iterable[float] = ()) -> tuple[float, ...]:
    """WAIT_BUCKETS plus every SLA threshold, sorted, each once: so that the share of a
    queue's (or grade's) accepts within its SLA is exact, ``le="<sla_s>"``."""
    return _with_thresholds(WAIT_BUCKETS, sla_thresholds)


def decision_buckets(offer_timeout_s: float | None = None) -> tuple[float, ...]:
    """OFFER_DECISION_BUCKETS plus the offer timeout (what a timed-out offer counts)."""
    extra = () if offer_timeout_s is None else (offer_timeout_s,)
    return _with_thresholds(OFFER_DECISION_BUCKETS, extra)


def sla_thresholds(config: Config) -> list[float]:
    """Every SLA target of the configuration: the queues' and the complaint grades'."""
    return [q.sla_s for q in config.queues] + [g.sla_s for g in config.core.grades]
