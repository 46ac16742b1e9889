"""The Prometheus alert rules: promtool checks them and runs their unit tests
(deploy/prometheus/tests), every alert the operations guide promises is there and tested,
and no rule mixes tenants (their unit tests put a second tenant beside the first, with a
queue of the same name)."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from obs_support import (
    NO_PROMTOOL,
    PROMETHEUS_CONFIG,
    ROOT,
    RULE_TESTS,
    RULES,
    alert_names,
    promtool,
    rules_text,
)

# What the operations guide (docs/operations.md, "Alerts") promises.
PROMISED = {
    "ZhongtaiWaitOverSLA",
    "ZhongtaiServiceLevelLow",
    "ZhongtaiCustomersWaitingNoAgent",
    "ZhongtaiOfferTimeoutBurst",
    "ZhongtaiAdapterErrors",
    "ZhongtaiOutboundFailing",
    "ZhongtaiGatewayDown",
    "ZhongtaiNoGatewayUp",
    "ZhongtaiRedisScriptErrors",
    "ZhongtaiRedisSlow",
    "ZhongtaiErrorsLogged",
}


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = promtool()
    if tool is None:
        pytest.skip(NO_PROMTOOL)
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_rules_are_valid():
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert files
    checked = run_promtool("check", "rules", *files)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_prometheus_config_is_valid_with_its_rules():
    checked = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "rule files found" in checked.stdout


def test_the_rules_pass_their_unit_tests():
    tests = sorted(str(p) for p in RULE_TESTS.glob("*.yml"))
    assert tests
    result = run_promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_promised_alert_exists_and_is_unit_tested():
    names = alert_names()
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) == PROMISED
    tested = set()
    for path in RULE_TESTS.glob("*.yml"):
        tested |= set(re.findall(r"alertname:\s*(\S+)", path.read_text("utf-8")))
    assert set(names) <= tested, f"alerts without a unit test: {set(names) - tested}"


def test_every_alert_has_a_severity_and_says_what_happened():
    text = rules_text()
    blocks = re.split(r"^\s*- alert:", text, flags=re.M)[1:]
    assert len(blocks) == len(PROMISED)
    for block in blocks:
        name = block.split()[0]
        assert re.search(r"severity:\s*(critical|warning)\b", block), name
        assert "summary:" in block and "description:" in block, name


def test_the_operations_guide_lists_every_alert():
    guide = (ROOT / "docs" / "operations.md").read_text("utf-8")
    for name in PROMISED:
        assert f"`{name}`" in guide, name


_AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|group|stddev|stdvar|count|count_values|bottomk|topk|quantile|limitk"
    r"|limit_ratio)\s*(by|without)?\s*(\([^()]*\))?\s*\("
)
_MATCHING = re.compile(r"\b(on|ignoring)\s*\(([^)]*)\)")
_AGGREGATION_AFTER = re.compile(r"\)\s*(by|without)\s*\(")


def _rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


def _labels(clause: str) -> set[str]:
    return {label.strip() for label in clause.strip("()").split(",") if label.strip()}


def test_no_rule_mixes_tenants():
    """Every aggregation keeps the tenant (by (tenant, ...)) and every vector match is on
    it: an alert is about one tenant's queue, channel or process, never several's."""
    expressions = _rule_expressions()
    assert len(expressions) == len(PROMISED)
    for name, expr in expressions:
        assert not _AGGREGATION_AFTER.search(expr), f"{name}: write by (...) before the operand"
        for match in _AGGREGATION.finditer(expr):
            modifier, clause = match.group(2), match.group(3)
            assert modifier == "by" and clause, f"{name}: {match.group(0)!r} without by (tenant)"
            assert "tenant" in _labels(clause), f"{name}: {match.group(0)!r} mixes tenants"
        for keyword, clause in _MATCHING.findall(expr):
            assert keyword == "on", f"{name}: ignoring(...) in {expr}"
            assert "tenant" in _labels(clause), f"{name}: on ({clause}) mixes tenants"


def test_every_rule_unit_test_series_names_its_tenant():
    for path in RULE_TESTS.glob("*.yml"):
        for case in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            tenants = set()
            for series in case["input_series"]:
                if 'job="zhongtai"' in series["series"]:
                    found = re.search(r'tenant="([^"]+)"', series["series"])
                    assert found, f"{case['name']}: {series['series']}"
                    tenants.add(found.group(1))
            for alert in case["alert_rule_test"]:
                for expected in alert["exp_alerts"]:
                    labels = expected["exp_labels"]
                    assert labels.get("tenant") in tenants or (
                        not tenants and labels.get("job") == "zhongtai"
                    ), f"{case['name']}: {alert['alertname']} without its tenant"
