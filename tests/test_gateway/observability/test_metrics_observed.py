"""The metrics added for dashboards and alerts, observed on a gateway running in the test
process: occupancy and available agents per queue, handle time and closes, the request
timer, Lua script timing, adapter and logged errors, process metrics, and no ids as labels."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import aiohttp
import pytest
from harness import agent, agent_client, customer, make_config, running
from helpers import wait_until
from obs_support import ROOT, scrape_text
from prometheus_client.parser import text_string_to_metric_families

from gateway.observability.instrument import TimedScript, instrument_scripts
from gateway.observability.metrics import Metrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(gw) -> Samples:
    return parse(await scrape_text(gw.admin_base))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def config(tenant: str):
    return make_config(
        tenant,
        agents=[
            agent("alice", capacity=2),
            agent("bob", capacity=2),
            agent("carol", capacity=5, skills={"billing": 2}),
        ],
        queues=[
            {"name": "general", "channels": ["webchat"], "sla_s": 20},
            {"name": "billing", "skills": {"billing": 1}, "sla_s": 120},
        ],
        routing={"offer_timeout_s": 30.0},
    )


async def test_occupancy_handle_time_and_closes(config, redis_url):
    async with running(config, redis_url) as gw:
        samples = await scrape(gw)
        assert value(samples, "zhongtai_queue_sla_seconds", queue="general") == 20
        assert value(samples, "zhongtai_queue_sla_seconds", queue="billing") == 120
        # Nobody connected: no capacity anywhere.
        assert value(samples, "zhongtai_agent_load_ratio", queue="general") == 0
        assert value(samples, "zhongtai_queue_available_agents", queue="general") == 0

        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            # The offer reserves one of alice's two webchat slots.
            samples = await scrape(gw)
            assert value(samples, "zhongtai_agent_load_ratio", queue="general") == 0.5
            assert value(samples, "zhongtai_queue_available_agents", queue="general") == 1
            # alice lacks billing skills: she counts for general only.
            assert value(samples, "zhongtai_queue_available_agents", queue="billing") == 0
            assert value(samples, "zhongtai_agent_load_ratio", queue="billing") == 0

            conversation_id = offer["conversation"]["id"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(type="set_status", status="lunch")
            await alice.expect("status", status="lunch")
            samples = await scrape(gw)
            assert value(samples, "zhongtai_agents", status="lunch") == 1
            assert value(samples, "zhongtai_queue_available_agents", queue="general") == 0
            # Away for lunch, still connected and holding the conversation: still occupied.
            assert value(samples, "zhongtai_agent_load_ratio", queue="general") == 0.5

            await alice.send(type="set_status", status="available")
            await alice.expect("status", status="available")
            await alice.send(type="close", conversation_id=conversation_id)
            await alice.expect("closed", conversation_id=conversation_id)
            samples = await scrape(gw)
        # A status nobody is in any more drops to 0 rather than keeping its last value.
        assert value(samples, "zhongtai_agents", status="lunch") == 0
        assert value(samples, "zhongtai_agent_load_ratio", queue="general") == 0
        assert value(samples, "zhongtai_handle_seconds_count", queue="general") == 1
        assert value(
            samples,
            "zhongtai_conversations_closed_total",
            queue="general",
            reason="closed_by_agent",
            close_reason="none",
        )
        # The accept time kept in Redis for the handle time is gone with the close.
        router = gw.services.router
        assert not await router.redis.exists(f"{router.keys.prefix}obs:accepted_at")


async def test_requests_scripts_and_process_metrics(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        async with http.get(gw.base + "/webchat/") as response:
            assert response.status == 200
        async with http.get(gw.base + "/nowhere") as response:
            assert response.status == 404
        async with customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            await visitor.expect("queue")
            samples = await scrape(gw)
    requests = "zhongtai_webhook_requests_total"
    assert value(samples, requests, adapter="webchat", status="2xx") == 1
    assert value(samples, requests, adapter="other", status="4xx") == 1
    # The customer's websocket is not a request to time.
    assert value(samples, "zhongtai_webhook_seconds_count", adapter="webchat") == 1
    assert value(samples, "zhongtai_redis_script_seconds_count", script="ingest") == 1
    assert value(samples, "zhongtai_redis_script_seconds_count", script="dispatch") >= 1
    assert value(samples, "zhongtai_build_info", version="0.1.0") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    assert ("process_cpu_seconds_total", ()) in samples
    assert any(name == "python_info" for name, _ in samples)


async def test_adapter_and_logged_errors(config, redis_url):
    async with running(config, redis_url) as gw:
        webchat = gw.services.adapters["webchat"]

        async def broken_notify(event: object) -> None:
            raise RuntimeError("the channel is down")

        webchat.notify = broken_notify  # type: ignore[method-assign]
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")  # the agent_joined notice fails
        logging.getLogger("router.somewhere").error("something broke")

        async def counted() -> Samples | None:
            samples = await scrape(gw)
            errors = value(
                samples, "zhongtai_adapter_errors_total", adapter="webchat", operation="notify"
            )
            return samples if errors else None

        samples = await wait_until(counted, message="the notify error counted")
    assert value(samples, "zhongtai_errors_logged_total", component="router") == 1
    # The failed notify was logged with its traceback too.
    assert value(samples, "zhongtai_errors_logged_total", component="gateway") >= 1


async def test_no_id_is_a_label(config, redis_url):
    async with running(config, redis_url) as gw:
        async with agent_client(gw, "alice") as alice, customer(gw) as visitor:
            await visitor.send(type="message", text="hello")
            offer = await alice.expect("offer")
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            conversation = offer["conversation"]
            await alice.send(
                type="reply", conversation_id=conversation["id"], text="hi", client_msg_id="r1"
            )
            await alice.expect("reply_ack")
            samples = await scrape(gw)
    ids = {"alice", "bob", "carol", conversation["id"], conversation["customer"]["id"]}
    ids.add(offer["offer_id"])
    for name, labels in samples:
        for label, label_value in labels:
            assert label not in {"agent", "conversation", "customer", "visitor", "offer"}, name
            assert label_value not in ids, (name, label)


async def test_script_errors_are_counted_and_timed():
    metrics = Metrics()

    async def failing(keys=None, args=None, client=None):
        raise ConnectionError("redis went away")

    async def working(keys=None, args=None, client=None):
        return [b"ok", *keys, *args]

    owner = SimpleNamespace(_scripts={"dispatch": failing, "accept": working})
    instrument_scripts(metrics, owner)
    instrument_scripts(metrics, owner)  # idempotent
    assert isinstance(owner._scripts["dispatch"], TimedScript)
    assert not isinstance(owner._scripts["dispatch"].script, TimedScript)
    with pytest.raises(ConnectionError):
        await owner._scripts["dispatch"](keys=["k"], args=[1])
    assert await owner._scripts["accept"](keys=["k"], args=[1]) == [b"ok", "k", 1]
    registry = metrics.registry
    assert (
        registry.get_sample_value("zhongtai_redis_script_errors_total", {"script": "dispatch"}) == 1
    )
    assert (
        registry.get_sample_value("zhongtai_redis_script_errors_total", {"script": "accept"}) == 0
    )
    assert (
        registry.get_sample_value("zhongtai_redis_script_seconds_count", {"script": "accept"}) == 1
    )


def test_overflows_are_counted_from_the_escalation_step():
    metrics = Metrics()
    step = SimpleNamespace
    spec = SimpleNamespace(
        overflow="general", escalation=[step(overflow=False), step(overflow=True)]
    )
    metrics.timer_fired("complaints", "escalated", "1", spec)
    metrics.timer_fired("complaints", "escalated", "2", spec)
    metrics.timer_fired("complaints", "aged", "5", spec)
    get = metrics.registry.get_sample_value
    assert get("zhongtai_escalations_total", {"queue": "complaints", "kind": "escalated"}) == 2
    assert get("zhongtai_escalations_total", {"queue": "complaints", "kind": "aged"}) == 1
    assert get("zhongtai_overflows_total", {"queue": "complaints", "to": "general"}) == 1


async def test_every_metric_is_documented(config, redis_url):
    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    async with running(config, redis_url) as gw:
        text = await scrape_text(gw.admin_base)
    families = [f for f in text_string_to_metric_families(text)]
    names = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    ours = {n for n in names if n.startswith("zhongtai_")}
    assert len(ours) >= 20
    undocumented = {n for n in names if f"`{n}`" not in guide}
    assert not undocumented, f"not in docs/operations.md: {sorted(undocumented)}"
