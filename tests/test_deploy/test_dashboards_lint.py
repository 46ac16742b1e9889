"""The Grafana dashboards and their provisioning: raw JSON that file provisioning loads as is
(id null, a stable uid, a datasource variable, no __inputs), PromQL that parses, metric names
that the gateway serves, Redis-derived gauges taken with max() across processes, and one
tenant at a time: every series a panel or a variable reads is filtered by the Tenant
variable, on the `tenant` label the scrape adds."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from harness import agent, make_config, running
from obs_support import (
    DASHBOARDS,
    DATASOURCE,
    DEPLOY,
    NO_PROMTOOL,
    PROMETHEUS_CONFIG,
    REDIS_GAUGES,
    SYNTHETIC,
    dashboard_expressions,
    dashboards,
    metric_names,
    panels,
    promtool,
    rules_text,
    sample_names,
    scrape_text,
    series_selectors,
)

EXPECTED = {
    "contact-centre.json": "zhongtai-contact-centre",
    "gateway-health.json": "zhongtai-gateway-health",
}


def test_the_dashboards_are_there_with_stable_uids():
    found = dashboards()
    assert {name: d["uid"] for name, d in found.items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_is_raw_json_for_file_provisioning(name):
    text = (DASHBOARDS / name).read_text("utf-8")
    dashboard = dashboards()[name]
    assert dashboard["id"] is None
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    # Exports "for sharing externally" need an import step that provisioning does not do.
    assert "__inputs" not in dashboard and "__requires" not in dashboard
    assert "${DS_" not in text
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        assert panel.get("title"), panel
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def _expressions_of(name: str) -> str:
    return "\n".join(t["expr"] for p in panels(dashboards()[name]) for t in p.get("targets", []))


def test_contact_centre_shows_what_a_supervisor_watches():
    exprs = _expressions_of("contact-centre.json")
    for needed in (
        "zhongtai_inbound_messages_total",  # traffic by channel
        "zhongtai_queue_depth",
        "histogram_quantile(0.5, sum by (le, queue) (rate(zhongtai_wait_seconds_bucket",
        "histogram_quantile(0.9, sum by (le, queue) (rate(zhongtai_wait_seconds_bucket",
        'zhongtai_sla_total{queue=~"$queue", outcome="met", tenant="$tenant"}',  # service level
        'zhongtai_sla_total{queue=~"$queue", outcome="breached", tenant="$tenant"}',
        'max by (status) (zhongtai_agents{tenant="$tenant"})',
        "zhongtai_agent_load_ratio",  # occupancy
        "sum by (outcome) (rate(zhongtai_offers_total",
        "histogram_quantile(0.5, sum by (le, queue) (rate(zhongtai_offer_decision_seconds_bucket",
        "histogram_quantile(0.9, sum by (le, queue) (rate(zhongtai_offer_decision_seconds_bucket",
        "sum by (le, channel) (rate(zhongtai_first_response_seconds_bucket",
    ):
        assert needed in exprs, needed


def test_gateway_health_shows_what_an_operator_watches():
    exprs = _expressions_of("gateway-health.json")
    for needed in (
        "zhongtai_webhook_seconds_bucket",  # handling latency
        "zhongtai_dispatch_seconds_bucket",
        "zhongtai_adapter_errors_total",
        "zhongtai_errors_logged_total",
        "zhongtai_redis_script_errors_total",
        "zhongtai_redis_script_seconds_bucket",
        "zhongtai_websocket_connections",
        "process_resident_memory_bytes",
        "rate(process_cpu_seconds_total",
        'up{job="zhongtai"',
    ):
        assert needed in exprs, needed


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_shows_one_tenant_chosen_from_the_scrape_label(name):
    """A single-value variable: queue names repeat across tenants, and max by (queue) over
    two tenants' "general" would show neither."""
    variables = {v["name"]: v for v in dashboards()[name]["templating"]["list"]}
    tenant = variables["tenant"]
    assert tenant["type"] == "query"
    assert tenant["definition"] == 'label_values(up{job="zhongtai"}, tenant)'
    assert tenant["query"]["query"] == tenant["definition"]
    assert tenant["multi"] is False and tenant["includeAll"] is False
    names = [v["name"] for v in dashboards()[name]["templating"]["list"]]
    assert names.index("tenant") < min(
        names.index(v) for v in names if v not in ("datasource", "tenant")
    ), "the other variables' queries depend on the tenant: it must come first"


def _reads_of(name: str) -> list[tuple[str, str]]:
    """(where, expression) for every panel target and every query variable but tenant."""
    dashboard = dashboards()[name]
    found = [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    found += [
        (f"variable {v['name']}", v["definition"])
        for v in dashboard["templating"]["list"]
        if v["type"] == "query" and v["name"] != "tenant"
    ]
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_series_read_is_filtered_by_the_tenant(name):
    seen = 0
    for where, expr in _reads_of(name):
        selectors = series_selectors(expr)
        assert selectors, f"{where}: reads no series: {expr}"
        for metric, matchers in selectors:
            seen += 1
            assert 'tenant="$tenant"' in matchers, f"{where}: {metric} for every tenant: {expr}"
    assert seen > 20


def test_the_scrape_config_labels_every_target_with_its_tenant():
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "zhongtai"]
    assert job["static_configs"]
    for group in job["static_configs"]:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", group["labels"]["tenant"]), group


_MAX_BEFORE = re.compile(r"max(\s+by\s*\([^)]*\))?\s*\(\s*$")


@pytest.mark.parametrize("source", ["dashboards", "rules"])
def test_figures_read_from_redis_are_taken_with_max(source):
    """Every process reports the same queue and agent figures: sum() would multiply them."""
    if source == "dashboards":
        texts = [expr for _, expr in dashboard_expressions()]
    else:
        texts = [rules_text()]
    seen = 0
    for text in texts:
        for match in re.finditer(r"\b(" + "|".join(REDIS_GAUGES) + r")\b", text):
            seen += 1
            before = text[: match.start()]
            assert _MAX_BEFORE.search(before), f"{match.group(1)} without max() in: {text}"
    assert seen


async def test_every_metric_referenced_is_served(tenant, redis_url):
    config = make_config(tenant, agents=[agent("alice")])
    async with running(config, redis_url) as gw:
        served = sample_names(await scrape_text(gw.admin_base))
    referenced = set()
    for _, expr in dashboard_expressions():
        referenced |= metric_names(expr)
    referenced |= metric_names(rules_text())
    assert "zhongtai_queue_depth" in referenced and "process_cpu_seconds_total" in referenced
    missing = referenced - served - SYNTHETIC
    assert not missing, f"not on the gateway's /metrics: {sorted(missing)}"


def test_every_dashboard_expression_parses(tmp_path):
    """promtool parses each expression as the rule of a throwaway rules file (the live test,
    test_prometheus_live.py, also runs each one)."""
    tool = promtool()
    if tool is None:
        pytest.skip(NO_PROMTOOL)
    expressions = dashboard_expressions()
    lines = ["groups:", "  - name: dashboards", "    rules:"]
    for i, (_, expr) in enumerate(expressions):
        quoted = expr.replace("'", "''")  # a YAML single-quoted scalar
        lines += [f"      - record: dashboard:expr_{i}", f"        expr: '{quoted}'"]
    rules = tmp_path / "dashboards.yml"
    rules.write_text("\n".join(lines) + "\n")
    checked = subprocess.run(
        [tool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(expressions)} rules found" in checked.stdout


def test_grafana_provisioning_points_at_the_dashboards():
    grafana = DEPLOY / "grafana"
    datasource = (grafana / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    assert "apiVersion: 1" in datasource
    assert "type: prometheus" in datasource
    assert "url: http://prometheus:9090" in datasource
    provider = (grafana / "provisioning" / "dashboards" / "zhongtai.yaml").read_text()
    assert "apiVersion: 1" in provider and "type: file" in provider
    path = re.search(r"^\s*path:\s*(\S+)", provider, re.M)
    assert path is not None
    compose = (DEPLOY / "compose.yaml").read_text()
    assert f"./grafana/dashboards:{path.group(1)}:ro" in compose
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in compose
