"""The scale benchmarks run end to end: bench/agents_scale.py with a handful of agents, and
bench/load.py with lite agents spread over two gateway processes on one Redis.

Each starts its own redis-server and real ``zhongtai serve`` processes. The checks are about
what a run reports (every row, every conversation offered, no errors), never about how fast:
the machine is shared and a benchmark's figures belong in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import NO_REDIS

from gateway.redis.embedded import find_redis_server

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import agents_scale
import load


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    if find_redis_server() is None:
        pytest.skip(NO_REDIS)


def test_agents_scale_reports_a_row_per_strategy_and_size(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = ["--agents", "2,5", "--strategies", "least_loaded,round_robin", "--quick"]
    argv += ["--conversations", "3", "--warmup", "1", "--saturation-s", "0.5", "--visitors", "4"]
    assert agents_scale.main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(row["strategy"], row["agents"]) for row in rows] == [
        ("least_loaded", 2),
        ("least_loaded", 5),
        ("round_robin", 2),
        ("round_robin", 5),
    ]
    for row in rows:
        assert row["errors"] == 0, row["error_samples"]
        assert row["sequential"] == 3  # every one-at-a-time conversation reached an agent
        assert row["offer_p50_ms"] is not None and row["decisions_per_s"] >= 0


def test_bad_sizes_and_strategies_are_refused_naming_the_option(capsys) -> None:
    refused = ((["--agents", "ten"], "--agents"), (["--strategies", "x"], "--strategies"))
    for argv, option in refused:
        with pytest.raises(SystemExit) as exit_info:
            agents_scale.parse_args(argv)
        assert exit_info.value.code == 2
        assert option in capsys.readouterr().err


def test_load_spreads_lite_agents_and_visitors_over_two_gateways(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    argv = ["--rate", "10", "--duration", "1", "--warmup", "0.5", "--drain", "60"]
    argv += ["--gateways", "2", "--lite", "--agents", "4", "--visitors", "6"]
    assert load.main([*argv, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["gateways"] == 2 and result["lite_agents"] is True
    assert result["errors"] == 0, result["error_samples"]
    assert result["unrouted"] == 0 and result["unclosed"] == 0
