"""A real Prometheus (Debian's package prometheus) scrapes two gateway processes on the
suite's Redis while customers and agents go through queueing, escalation, decline, offer
timeout, accept, reply and close; then every PromQL expression of the dashboards and the
alert rules must parse and return data, and so must every series selector in them (alert
conditions that need something to go wrong are allow-listed below, with the reason)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import Client, GatewayProcess, accept_offer, connect
from helpers import free_port, wait_until
from obs_support import NO_PROMETHEUS, RULES, dashboard_expressions

pytestmark = pytest.mark.timeout(120)

SCRAPE_S = 1
RATE_INTERVAL = "1m"  # what Grafana's $__rate_interval becomes
DEADLINE_S = 30.0

GATEWAY_TOML = """
[logging]
json = true

[routing]
offer_timeout_s = 1.0
sweep_interval_s = 0.05
position_interval_s = 0.0

[webchat]
messages_per_minute = 0

[[agents]]
id = "alice"
token = "tok-alice"
capacity = { webchat = 3 }

[[agents]]
id = "bob"
token = "tok-bob"
capacity = { webchat = 3 }

# general: an SLA of 1 s that the first customers miss, ageing and an escalation step that
# lets the billing queue's agents in (an overflow) after 1 s of waiting.
[[queues]]
name = "general"
channels = ["webchat"]
sla_s = 1.0
ageing_s = 1.0
overflow = "billing"

[[queues.escalation]]
after_s = 1.0
overflow = true

# billing: nobody has the skill, so the refund customer waits past the SLA with no agent.
[[queues]]
name = "billing"
skills = { billing = 1 }
sla_s = 1.0

[[rules]]
name = "refunds"
keywords = ["refund"]
queue = "billing"
"""

# Alerts whose expressions have data only when something is wrong, each with the reason;
# they must still parse (promtool's unit tests, test_alert_rules.py, make them fire). Every
# dashboard expression must have data: the gateway creates its error counters at 0.
NO_DATA = {
    "ZhongtaiOfferTimeoutBurst": "one offer times out here, not five",
    "ZhongtaiGatewayDown": "both gateways stay up",
    "ZhongtaiNoGatewayUp": "both gateways stay up",
    "ZhongtaiAdapterErrors": "no adapter fails here",
    "ZhongtaiOutboundFailing": "no reply fails here",
    "ZhongtaiRedisScriptErrors": "no Lua script call fails here",
    "ZhongtaiRedisSlow": "script calls take far less than 50 ms here",
    "ZhongtaiErrorsLogged": "nothing logs an error here",
}

_SELECTOR = re.compile(
    r"(?<![\w:])(zhongtai_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+|up)\b(\{[^}]*\})?"
)


def selectors(expr: str) -> set[str]:
    """The series selectors of an expression, e.g. ``zhongtai_offers_total{outcome="x"}``."""
    return {name + (matchers or "") for name, matchers in _SELECTOR.findall(expr)}


class Prometheus:
    def __init__(self, directory: Path, targets: list[str], tenant: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        rule_files = "\n".join(f"  - {json.dumps(str(p))}" for p in sorted(RULES.glob("*.yml")))
        config.write_text(
            f"global:\n  scrape_interval: {SCRAPE_S}s\n  evaluation_interval: {SCRAPE_S}s\n"
            f"rule_files:\n{rule_files}\n"
            "scrape_configs:\n  - job_name: zhongtai\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
            # The label the dashboards' tenant variable and the rules' by (tenant) use.
            f"        labels: {{tenant: {json.dumps(tenant)}}}\n"
        )
        self.log = (directory / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, http: aiohttp.ClientSession) -> None:
        async def answers() -> bool:
            assert self.process.poll() is None, "prometheus exited; see prometheus.log"
            try:
                async with http.get(self.base + "/-/ready") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(answers, timeout=20, interval=0.1, message="prometheus ready")

    async def api(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        async with http.get(self.base + path, params=params) as response:
            body = await response.json()
        return body

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


async def hello(url: str, stack: contextlib.AsyncExitStack, **frame: Any) -> Client:
    client = await stack.enter_async_context(connect(url))
    await client.send(type="hello", **frame)
    await client.expect("welcome")
    return client


async def scraped(gateways: list[GatewayProcess], needle: str) -> bool:
    async with aiohttp.ClientSession() as http:
        for gateway in gateways:
            url = f"http://127.0.0.1:{gateway.admin_port}/metrics"
            async with http.get(url) as response:
                if needle in await response.text():
                    return True
    return False


async def traffic(gw1: GatewayProcess, gw2: GatewayProcess, stack: contextlib.AsyncExitStack):
    """Customers on both processes; bob declines one offer and lets one time out; alice
    accepts, replies and closes; a refund request waits in billing, where nobody can help."""
    customers = []
    for gateway, text in ((gw1, "hello"), (gw2, "hi there"), (gw2, "I want a refund")):
        visitor = await hello(gateway.ws_url("/webchat/ws"), stack, visitor_token=None)
        await visitor.send(type="message", text=text)
        await visitor.expect("queue")
        customers.append(visitor)
    # Waiting past the SLA, aged and escalated (an overflow) before any agent comes.
    await wait_until(
        lambda: scraped([gw1, gw2], "zhongtai_overflows_total{"),
        timeout=10,
        interval=0.1,
        message="an escalation step with overflow",
    )

    bob = await hello(gw2.ws_url("/agent/ws"), stack, token="tok-bob", protocol=1)
    first = await bob.expect("offer")
    await bob.send(type="decline", offer_id=first["offer_id"], reason="busy")
    second = await bob.expect("offer")
    await bob.expect("offer_revoked", offer_id=second["offer_id"], reason="timeout")
    await bob.send(type="set_status", status="away")
    await bob.expect("status", status="away")

    alice = await hello(gw1.ws_url("/agent/ws"), stack, token="tok-alice", protocol=1)
    held = []
    while len(held) < 2:
        held.append(await accept_offer(alice))
    for i, conversation in enumerate(held):
        await alice.send(
            type="reply", conversation_id=conversation, text="Hello!", client_msg_id=f"r{i}"
        )
        await alice.expect("reply_ack", client_msg_id=f"r{i}")
    await alice.send(type="close", conversation_id=held[0])
    await alice.expect("closed", conversation_id=held[0])

    # A customer answered within the SLA, now that alice is there.
    late = await hello(gw2.ws_url("/webchat/ws"), stack, visitor_token=None)
    await late.send(type="message", text="quick question")
    await accept_offer(alice)

    async with aiohttp.ClientSession() as http:
        for gateway in (gw1, gw2):
            async with http.get(f"http://127.0.0.1:{gateway.port}/webchat/") as response:
                assert response.status == 200


@contextlib.asynccontextmanager
async def gateways(
    directory: Path, tenant: str, redis_url: str
) -> AsyncIterator[list[GatewayProcess]]:
    started = [
        GatewayProcess(directory, tenant, redis_url, f"node{i}", GATEWAY_TOML) for i in (1, 2)
    ]
    try:
        await asyncio.gather(*(g.ready() for g in started))
        yield started
    finally:
        await asyncio.gather(*(g.stop() for g in started), return_exceptions=True)


async def test_prometheus_evaluates_every_dashboard_and_rule_expression(
    tmp_path: Path, tenant: str, redis_url: str
) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip(NO_PROMETHEUS)
    async with (
        gateways(tmp_path, tenant, redis_url) as (gw1, gw2),
        aiohttp.ClientSession() as http,
        contextlib.AsyncExitStack() as stack,
    ):
        prometheus = Prometheus(
            tmp_path, [f"127.0.0.1:{gw1.admin_port}", f"127.0.0.1:{gw2.admin_port}"], tenant
        )
        try:
            await prometheus.ready(http)
            # Scraped once before any event, so that increase() sees each counter's first.
            await targets_up(prometheus, http)
            await traffic(gw1, gw2, stack)
            await check_expressions(prometheus, http, tenant)
        finally:
            prometheus.stop()
    # The gateways' JSON logs: one object a line, agent ids as fields, no error.
    outputs = [g.process.stdout.read().decode() for g in (gw1, gw2) if g.process.stdout]
    entries = [json.loads(line) for out in outputs for line in out.splitlines() if line.strip()]
    assert any(e.get("agent") == "bob" and "connected" in e["message"] for e in entries)
    errors = [e for e in entries if e["level"] in ("error", "critical")]
    assert not errors, errors


async def targets_up(prometheus: Prometheus, http: aiohttp.ClientSession) -> None:
    async def up() -> bool:
        body = await prometheus.api(http, "/api/v1/targets")
        active = body["data"]["activeTargets"]
        return len(active) == 2 and all(t["health"] == "up" for t in active)

    await wait_until(up, timeout=15, interval=0.1, message="both gateways scraped")


async def check_expressions(
    prometheus: Prometheus, http: aiohttp.ClientSession, tenant: str
) -> None:
    async def rules_loaded() -> list[tuple[str, str]] | None:
        body = await prometheus.api(http, "/api/v1/rules")
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        if not rules or any(r.get("health") != "ok" for r in rules):
            return None
        return [(r["name"], r["query"]) for r in rules]

    rules = await wait_until(rules_loaded, timeout=15, interval=0.2, message="rules evaluated")
    expressions = dashboard_expressions(RATE_INTERVAL, tenant) + rules
    keys = {where for where, _ in expressions}
    assert set(NO_DATA) <= keys, f"stale allow-list entries: {set(NO_DATA) - keys}"
    wanted = {where: expr for where, expr in expressions if where not in NO_DATA}
    wanted |= {f"selector {s}": f"count({s})" for _, expr in expressions for s in selectors(expr)}

    async def run(expr: str) -> tuple[bool, str]:
        """(has data, problem): a parse error fails at once; no data may come later."""
        body = await prometheus.api(http, "/api/v1/query", query=expr)
        assert body["status"] == "success", f"{expr}: {body.get('errorType')}: {body.get('error')}"
        data = body["data"]
        return (data["resultType"] in ("scalar", "string") or bool(data["result"])), ""

    for _, expr in expressions:  # every one parses, the allow-listed ones included
        await run(expr)

    missing: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        missing = {}
        for where, expr in wanted.items():
            has_data, _ = await run(expr)
            if not has_data:
                missing[where] = expr
        if not missing or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert not missing, "no data for:\n" + "\n".join(f"{k}: {v}" for k, v in missing.items())
