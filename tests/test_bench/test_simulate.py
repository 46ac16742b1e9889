"""The contact-centre simulation (bench/simulate.py) and its Erlang C formulas (bench/erlang.py).

The simulation drives the real router on the suite's Redis with a virtual clock. The checks:
every arrival is served exactly once, no agent holds two conversations at once, waits are never
negative; a work-conserving first-come-first-served router gives every conversation exactly the
wait of an ideal M/M/N FCFS queue fed the same arrivals and handle times; and the mean wait
lands within 10 % of Erlang C where a short run can show it reliably (one agent: the sampling
error of a mean wait grows fast with the number of agents and the occupancy, see BENCHMARKS.md).
"""

from __future__ import annotations

import itertools
import math
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import erlang
import sim_workload
import simulate

# --- Erlang C --------------------------------------------------------------------------------


def test_architecture_example_waits_six_and_a_half_seconds() -> None:
    # docs/design.md, "Sizing": 2 contacts a second, 60 s handle time, 125 agents -> 6.6 s.
    p = erlang.predict(2.0, 60.0, 125, sla_s=20.0)
    assert p.load_erlangs == 120
    assert p.occupancy == pytest.approx(0.96)
    assert round(p.mean_wait_s, 1) == 6.6
    assert p.prob_wait == pytest.approx(0.5478, abs=1e-4)
    assert p.service_level == pytest.approx(0.8965, abs=1e-4)


def test_textbook_values() -> None:
    assert erlang.erlang_b(1.0, 1) == pytest.approx(0.5)
    assert erlang.erlang_b(2.0, 2) == pytest.approx(0.4)
    assert erlang.prob_wait(2.0, 3) == pytest.approx(4 / 9)  # M/M/3 at A = 2
    # M/M/1: P(wait) = rho, E[wait] = rho / (mu - lambda).
    assert erlang.prob_wait(0.5, 1) == pytest.approx(0.5)
    assert erlang.mean_wait_s(0.5, 1.0, 1) == pytest.approx(1.0)
    # M/M/2: P(wait) = 2 rho^2 / (1 + rho).
    assert erlang.prob_wait(1.2, 2) == pytest.approx(2 * 0.6**2 / 1.6)


def test_the_worked_staffing_example() -> None:
    # The usual worked example: 100 calls in 30 minutes, 180 s handle time, 80 % in 20 s.
    rate = 100 / 1800
    assert erlang.offered_load(rate, 180) == pytest.approx(10.0)
    assert erlang.agents_for(rate, 180, 20, 0.8) == 14
    p = erlang.predict(rate, 180, 14)
    assert p.prob_wait == pytest.approx(0.1741, abs=1e-4)
    assert p.mean_wait_s == pytest.approx(7.84, abs=0.01)
    assert p.service_level > 0.8 > erlang.service_level(rate, 180, 13, 20)


def test_service_level_at_zero_is_the_share_not_kept_waiting() -> None:
    c = erlang.prob_wait(120.0, 125)
    assert erlang.service_level(2.0, 60.0, 125, 0.0) == pytest.approx(1 - c)
    assert erlang.service_level(2.0, 60.0, 125, 1e6) == pytest.approx(1.0)


def test_unstable_load_is_refused() -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang.mean_wait_s(2.0, 60.0, 120)


def test_an_offer_delay_is_waiting_with_a_longer_hold() -> None:
    none = erlang.predict_with_offer_delay(2.0, 60.0, 125, 0.0)
    assert none.mean_wait_s == pytest.approx(erlang.mean_wait_s(2.0, 60.0, 125))
    slow = erlang.predict_with_offer_delay(2.0, 60.0, 125, 1.0)
    # docs/design.md, "Sizing": 1 s more per contact roughly doubles the 6.6 s wait (here more).
    assert slow.mean_wait_s > 2 * none.mean_wait_s


def test_the_ideal_fcfs_queue_converges_on_erlang_c() -> None:
    # Pure Python, no Redis: the reference the router is compared with. 8 agents at 75 %: over
    # 400,000 arrivals the mean wait's standard deviation is about 2.7 % of it.
    scenario = simulate.single_skill(8, 0.1, 60.0, 400_000, 10_000, seed=7)
    waits = sim_workload.ideal_fcfs_waits(scenario)
    mean_s = statistics.fmean(waits[scenario.warmup :]) / 1000
    assert mean_s == pytest.approx(erlang.mean_wait_s(0.1, 60.0, 8), rel=0.10)


def test_the_workload_repeats_with_its_seed() -> None:
    a = simulate.single_skill(5, 0.1, 60.0, 200, 0, seed=3)
    assert list(sim_workload.workload(a)) == list(sim_workload.workload(a))
    arrivals = list(sim_workload.workload(a))
    assert all(x.at_ms < y.at_ms for x, y in itertools.pairwise(arrivals))
    other = simulate.single_skill(5, 0.1, 60.0, 200, 0, seed=4)
    assert list(sim_workload.workload(other)) != arrivals


# --- The router under simulated traffic --------------------------------------------------------


def assert_conserved(summary: simulate.Summary, outcome: simulate.Outcome) -> None:
    s = outcome.scenario
    delay_ms = round(s.accept_delay_s * 1000)
    assert summary.conserved, summary.redis_final
    assert outcome.accepts == outcome.closes == s.arrivals  # each arrival served exactly once
    assert all(w >= delay_ms >= 0 for w in outcome.wait_ms)  # and never before it arrived
    assert max(outcome.max_load.values()) <= 1  # capacity 1: one conversation at a time
    assert summary.redis_final == {"queued": 0, "offers": 0, "assignments": 0, "load": 0}


async def test_every_arrival_is_served_once_by_one_free_agent(redis, tenant) -> None:
    scenario = simulate.single_skill(
        5, 0.075, 60.0, 300, 30, seed=11, accept_delay_s=2.0
    )  # 90 % busy
    summary, outcome = await simulate.simulate(redis, scenario, tenant=tenant)
    assert_conserved(summary, outcome)
    assert summary.overall.waited_share > 0.3  # the queue was really used
    assert 0 < summary.occupancy_min <= summary.occupancy_max <= 1


@pytest.mark.parametrize("strategy", simulate.STRATEGIES)
async def test_two_skills_go_only_to_qualified_agents(redis, tenant, strategy) -> None:
    scenario = simulate.two_skill(
        strategy, 0.4, 60.0, 400, 40, seed=5, agents=(6, 4, 5), billing_share=0.3
    )
    summary, outcome = await simulate.simulate(redis, scenario, tenant=tenant)
    assert_conserved(summary, outcome)
    for index, queue in enumerate(outcome.queue_of):
        required = scenario.queues[queue].skills
        skills = scenario.agents[outcome.agent_of[index]].skills
        assert all(skills.get(k, 0) >= level for k, level in required.items())
    assert {q.name for q in summary.queues} == {"general", "billing"}


@pytest.mark.parametrize("accept_delay_s", [0.0, 1.5])
async def test_the_router_waits_exactly_like_an_ideal_fcfs_queue(
    redis, tenant, accept_delay_s
) -> None:
    # The worked example of docs/design.md, at 96 % occupancy: any idle time the router
    # wasted, or any conversation served out of turn, would change some conversation's wait.
    scenario = simulate.single_skill(125, 2.0, 60.0, 1500, 0, seed=2, accept_delay_s=accept_delay_s)
    summary, outcome = await simulate.simulate(redis, scenario, tenant=tenant)
    assert_conserved(summary, outcome)
    ideal = sim_workload.ideal_fcfs_waits(scenario)
    assert sum(1 for w in ideal if w > round(accept_delay_s * 1000)) > 200  # queues formed
    assert list(outcome.wait_ms) == list(ideal)
    assert summary.ideal_mismatches == 0


async def test_mean_wait_within_ten_percent_of_erlang_c(redis, tenant) -> None:
    # One agent at 20 % occupancy, 12,000 arrivals: the mean wait's standard deviation is about
    # 4.4 % of it, so 10 % is over two of them (98 % of 300 seeds pass; seed 1 lands at +6 %).
    # With more agents or more load a reliable check takes millions of arrivals: the CLI's.
    scenario = simulate.single_skill(1, 0.2 / 60, 60.0, 12_000, 500, seed=1)
    summary, outcome = await simulate.simulate(redis, scenario, tenant=tenant)
    assert_conserved(summary, outcome)
    predicted = erlang.mean_wait_s(scenario.rate, scenario.handle_s, 1)
    assert summary.erlang_c is not None
    assert summary.erlang_c.mean_wait_s == pytest.approx(predicted)
    assert summary.overall.mean_wait_s == pytest.approx(predicted, rel=0.10)
    assert summary.occupancy_mean == pytest.approx(0.2, rel=0.10)
    assert not math.isnan(summary.overall.ci95_s[0])
