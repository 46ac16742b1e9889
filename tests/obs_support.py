"""What the observability tests share: the committed dashboards and rules, the PromQL in
them, and the metric names a gateway's /metrics serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RULES = DEPLOY / "prometheus" / "rules"
RULE_TESTS = DEPLOY / "prometheus" / "tests"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
NO_PROMTOOL = "promtool not found: apt-get install prometheus (Debian package prometheus)"
NO_PROMETHEUS = "prometheus not found: apt-get install prometheus (Debian package prometheus)"

# Figures every process reads from Redis: the same in every process, so max(), not sum().
REDIS_GAUGES = (
    "zhongtai_queue_depth",
    "zhongtai_queue_oldest_wait_seconds",
    "zhongtai_queue_available_agents",
    "zhongtai_agent_load_ratio",
    "zhongtai_agents",
)
# Series Prometheus makes itself rather than scrapes.
SYNTHETIC = {"up"}


def run_clean(
    args: list[str], cwd: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A deploy tool run as on a fresh machine: the developer's own ZHONGTAI_ (and GRAFANA_)
    variables would win over what the files under test say."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHONGTAI_", "GRAFANA_"))}
    env |= extra or {}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def promtool() -> str | None:
    return shutil.which("promtool")


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def grafana_to_promql(expr: str, rate_interval: str = "1m", tenant: str = "default") -> str:
    """A dashboard expression as Prometheus gets it: Grafana's variables substituted as
    Grafana does for "All" (our multi-value variables all use allValue ".*"), and the
    single-value `tenant` variable as the one tenant chosen."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", rate_interval)
    expr = re.sub(r"\$\{?tenant\}?", tenant, expr)
    return re.sub(r"\$\{?(queue|channel|instance)\}?", ".*", expr)


def dashboard_expressions(
    rate_interval: str = "1m", tenant: str = "default"
) -> list[tuple[str, str]]:
    """(where, PromQL) for every target of every panel of every dashboard."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                where = f"{name}: {panel['title']} [{target['refId']}]"
                found.append((where, grafana_to_promql(target["expr"], rate_interval, tenant)))
    return found


_SELECTOR = re.compile(
    r"(?<![\w:\"])(zhongtai_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+|up)\b(\{[^}]*\})?(?!\s*\()"
)


def series_selectors(promql: str) -> list[tuple[str, str]]:
    """(metric, matchers) for every series selector of an expression, matchers "" when the
    metric is read bare: ``zhongtai_offers_total{outcome="x"}`` gives
    ``("zhongtai_offers_total", '{outcome="x"}')``."""
    return _SELECTOR.findall(promql)


def rules_text() -> str:
    """The rule files, comment lines left out."""
    lines = [
        line
        for path in sorted(RULES.glob("*.yml"))
        for line in path.read_text("utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    return "\n".join(lines)


def alert_names() -> list[str]:
    return re.findall(r"^\s*- alert:\s*(\S+)", rules_text(), re.M)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_METRIC = re.compile(r"\b(zhongtai_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+|up)\b")


def metric_names(promql: str) -> set[str]:
    """The metric names an expression reads (quoted strings, e.g. label values, left out)."""
    return set(_METRIC.findall(_STRING.sub('""', promql)))


def sample_names(exposition: str) -> set[str]:
    """Every series name a scrape of this text can produce (counters' _total, histograms'
    _bucket, _count and _sum), families without a sample yet included."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_count", "_sum", "_created"],
            "summary": ["", "_count", "_sum", "_created"],
        }.get(family.type, [""])
        names |= {family.name + s for s in suffixes}
        names |= {s.name for s in family.samples}
    return names


async def scrape_text(admin_base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(admin_base + "/metrics") as response:
        assert response.status == 200
        return await response.text()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in a scrape's text; None when it is not there."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


async def scraped(admin_base: str, name: str, **labels: str) -> float | None:
    """One series' value as the gateway's /metrics gives it now."""
    return sample(await scrape_text(admin_base), name, **labels)
