"""Every configured SLA (queues' and grades' sla_s) is a bucket boundary of the wait
histogram, and the offer decision time (offer to the agent's answer) is observed by queue and
outcome for accepts and declines through the agent socket, and for offers that time out."""

from __future__ import annotations

import asyncio

import pytest
from harness import agent, agent_client, customer, make_config, running
from obs_support import sample, scrape_text
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.buckets import (
    OFFER_DECISION_BUCKETS,
    WAIT_BUCKETS,
    decision_buckets,
    wait_buckets,
)
from gateway.observability.metrics import Metrics

# Long enough that the answer cannot land in the same millisecond as the offer.
THINK_S = 0.05


def bucket_bounds(text: str, name: str, **labels: str) -> list[float]:
    """The ``le`` values of one histogram series, in exposition order."""
    bounds = []
    for family in text_string_to_metric_families(text):
        for point in family.samples:
            if point.name != f"{name}_bucket":
                continue
            if all(point.labels.get(k) == v for k, v in labels.items()):
                bounds.append(float(point.labels["le"]))
    return bounds


def test_sla_thresholds_join_the_default_buckets_sorted_once():
    assert wait_buckets() == tuple(float(b) for b in WAIT_BUCKETS)
    buckets = wait_buckets([25, 20.0, 7.5, 25.0, 0.0])
    assert buckets == tuple(sorted({*map(float, WAIT_BUCKETS), 25.0, 7.5}))
    assert decision_buckets(0.7) == tuple(sorted({*map(float, OFFER_DECISION_BUCKETS), 0.7}))
    # Each Metrics has its own registry and buckets: two gateways in one process may differ.
    with_sla, without = Metrics([25]), Metrics()
    for metrics in (with_sla, without):
        metrics.wait.labels("q")
    labels = {"queue": "q", "le": "25.0"}
    assert with_sla.registry.get_sample_value("zhongtai_wait_seconds_bucket", labels) == 0
    assert without.registry.get_sample_value("zhongtai_wait_seconds_bucket", labels) is None


async def test_configured_slas_are_bucket_boundaries(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice")],
        queues=[
            {"name": "general", "channels": ["webchat"], "sla_s": 25},
            {"name": "vip", "sla_s": 20},  # already a default bucket: once
        ],
        grades=[{"name": "A", "priority": 8, "sla_s": 7.5}],
        routing={"offer_timeout_s": 45.0},
    )
    async with running(config, redis_url) as gw:
        text = await scrape_text(gw.admin_base)
    bounds = bucket_bounds(text, "zhongtai_wait_seconds", queue="general")
    expected = [*sorted({*map(float, WAIT_BUCKETS), 25.0, 7.5, 20.0}), float("inf")]
    assert bounds == expected
    assert 'zhongtai_wait_seconds_bucket{le="25.0",queue="general"}' in text
    assert 'zhongtai_wait_seconds_bucket{le="7.5",queue="vip"}' in text
    # The offer timeout is a boundary of the decision time (45 s is a default one: once).
    decision = bucket_bounds(
        text, "zhongtai_offer_decision_seconds", queue="general", outcome="accepted"
    )
    assert decision == [*map(float, OFFER_DECISION_BUCKETS), float("inf")]


async def test_accept_and_decline_are_observed_by_queue_and_outcome(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice"), agent("bob")],
        queues=[{"name": "general", "channels": ["webchat"], "sla_s": 20}],
        routing={"offer_timeout_s": 30.0},
    )
    name = "zhongtai_offer_decision_seconds"
    async with running(config, redis_url) as gw:
        before = await scrape_text(gw.admin_base)
        for outcome in ("accepted", "declined", "timed_out"):
            assert sample(before, f"{name}_count", queue="general", outcome=outcome) == 0
        async with customer(gw) as visitor, agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            await asyncio.sleep(THINK_S)
            await alice.send(type="decline", offer_id=offer["offer_id"], reason="busy")
            async with agent_client(gw, "bob") as bob:
                offer = await bob.expect("offer")
                await asyncio.sleep(THINK_S)
                await bob.send(type="accept", offer_id=offer["offer_id"])
                await bob.expect("assigned")
                text = await scrape_text(gw.admin_base)
    for outcome in ("accepted", "declined"):
        labels = {"queue": "general", "outcome": outcome}
        assert sample(text, f"{name}_count", **labels) == 1, outcome
        seconds = sample(text, f"{name}_sum", **labels)
        assert seconds is not None and 0 < seconds < 30, (outcome, seconds)
    assert sample(text, f"{name}_count", queue="general", outcome="timed_out") == 0


async def test_a_timed_out_offer_counts_the_offer_timeout(tenant, redis_url):
    config = make_config(
        tenant,
        agents=[agent("alice")],
        queues=[{"name": "general", "channels": ["webchat"]}],
        routing={"offer_timeout_s": 0.7, "sweep_interval_s": 0.05},
    )
    name = "zhongtai_offer_decision_seconds"
    async with running(config, redis_url) as gw:
        async with customer(gw) as visitor, agent_client(gw, "alice") as alice:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            await alice.expect("offer_revoked", offer_id=offer["offer_id"], reason="timeout")
            text = await scrape_text(gw.admin_base)
    labels = {"queue": "general", "outcome": "timed_out"}
    # Alice is not offered the conversation again (a missed offer counts as a decline).
    assert sample(text, f"{name}_count", **labels) == 1
    assert sample(text, f"{name}_sum", **labels) == pytest.approx(0.7)
    assert 'le="0.7"' in text  # the offer timeout is a bucket boundary
