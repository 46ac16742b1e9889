"""The Prometheus alert rules: promtool checks them and runs their unit tests
(deploy/prometheus/tests), and every alert the operations guide promises is there and tested."""

from __future__ import annotations

import re
import subprocess

import pytest
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
