"""What a run's raw outcome means: waits, service level and occupancy, beside the models.

Only arrivals after the warm-up count. Each mean wait comes with a batch-means interval,
because near full occupancy the waits of neighbouring customers are strongly correlated.
Where every agent can take every conversation the figures are set beside Erlang C and the
ideal FCFS queue; with skills, beside Erlang C as if every agent had them all.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

import erlang
import msgspec
from sim_engine import Outcome, Simulation
from sim_workload import ideal_fcfs_waits

T_975 = {9: 2.262, 19: 2.093, 29: 2.045}  # Student t quantiles for the batch-means interval


class QueueSummary(msgspec.Struct, kw_only=True):
    name: str
    measured: int
    mean_wait_s: float
    ci95_s: tuple[float, float]
    waited_share: float
    within_sla: float
    p90_wait_s: float


class Summary(msgspec.Struct, kw_only=True):
    scenario: str
    strategy: str
    agents: int
    capacity: int
    rate: float
    handle_s: float
    accept_delay_s: float
    sla_s: float
    arrivals: int
    warmup: int
    seed: int
    virtual_s: float
    wall_s: float
    overall: QueueSummary
    queues: list[QueueSummary]
    occupancy_mean: float
    occupancy_min: float
    occupancy_max: float
    occupancy_by_group: dict[str, float]
    conserved: bool
    max_load: int
    offers: int
    accepts: int
    closes: int
    redis_final: dict[str, Any]
    erlang_c: erlang.ErlangC | None = None
    pooled_erlang_c: erlang.ErlangC | None = None  # skills: as if every agent had them all
    ideal_mean_wait_s: float | None = None
    ideal_mismatches: int | None = None


def summarise(sim: Simulation, outcome: Outcome) -> Summary:
    s = outcome.scenario
    measured = range(s.warmup, s.arrivals)
    waits = [outcome.wait_ms[i] for i in measured]
    offer_ms = round(s.accept_delay_s * 1000)
    per_queue = [
        summarise_waits(
            q.name,
            [outcome.wait_ms[i] for i in measured if outcome.queue_of[i] == n],
            s.sla_s,
            offer_ms,
        )
        for n, q in enumerate(s.queues)
    ]
    occ = occupancy(outcome)
    groups: dict[str, list[float]] = {}
    for agent, value in occ.items():
        groups.setdefault(_group(agent), []).append(value)
    served = all(w >= 0 for w in outcome.wait_ms)
    final = outcome.redis_final
    conserved = (
        served
        and outcome.accepts == outcome.closes == s.arrivals
        and not sim.live
        and not any(final.values())
    )
    start, end = outcome.window_ms
    return Summary(
        scenario=s.name,
        strategy=s.strategy,
        agents=len(s.agents),
        capacity=s.capacity,
        rate=s.rate,
        handle_s=s.handle_s,
        accept_delay_s=s.accept_delay_s,
        sla_s=s.sla_s,
        arrivals=s.arrivals,
        warmup=s.warmup,
        seed=s.seed,
        virtual_s=(end - start) / 1000,
        wall_s=outcome.wall_s,
        overall=summarise_waits("all", waits, s.sla_s, offer_ms),
        queues=per_queue,
        occupancy_mean=statistics.fmean(occ.values()),
        occupancy_min=min(occ.values()),
        occupancy_max=max(occ.values()),
        occupancy_by_group={g: statistics.fmean(v) for g, v in sorted(groups.items())},
        conserved=conserved,
        max_load=max(outcome.max_load.values()),
        offers=outcome.offers,
        accepts=outcome.accepts,
        closes=outcome.closes,
        redis_final=final,
    )


def _group(agent: str) -> str:
    return {"g": "general-only", "b": "billing-only", "x": "both skills"}.get(agent[0], "all")


def summarise_waits(
    name: str, waits_ms: Sequence[int], sla_s: float, offer_ms: int = 0
) -> QueueSummary:
    """``offer_ms``: the accept delay, which every wait includes; waiting longer is queueing."""
    if not waits_ms:
        return QueueSummary(
            name=name,
            measured=0,
            mean_wait_s=math.nan,
            ci95_s=(math.nan, math.nan),
            waited_share=math.nan,
            within_sla=math.nan,
            p90_wait_s=math.nan,
        )
    sla_ms = sla_s * 1000
    low, high = batch_means_ci(waits_ms)
    ordered = sorted(waits_ms)
    return QueueSummary(
        name=name,
        measured=len(waits_ms),
        mean_wait_s=statistics.fmean(waits_ms) / 1000,
        ci95_s=(low / 1000, high / 1000),
        waited_share=sum(1 for w in waits_ms if w > offer_ms) / len(waits_ms),
        within_sla=sum(1 for w in waits_ms if w <= sla_ms) / len(waits_ms),
        p90_wait_s=ordered[int(0.9 * (len(ordered) - 1))] / 1000,
    )


def batch_means_ci(values: Sequence[int], batches: int = 10) -> tuple[float, float]:
    """A 95 % interval for the mean of an autocorrelated series by batch means (in order).
    Near full occupancy even batches of a few thousand arrivals are correlated, so the
    interval is, if anything, too narrow."""
    size = len(values) // batches
    if size < 2:
        return (math.nan, math.nan)
    means = [statistics.fmean(values[i * size : (i + 1) * size]) for i in range(batches)]
    centre = statistics.fmean(means)
    half = T_975.get(batches - 1, 1.96) * statistics.stdev(means) / math.sqrt(batches)
    return (centre - half, centre + half)


def occupancy(outcome: Outcome) -> dict[str, float]:
    """Handling time (accept to close) inside the measured window, per unit of capacity."""
    start, end = outcome.window_ms
    span = max(1, end - start)
    capacity = {a.id: sum(a.capacity.values()) for a in outcome.scenario.agents}
    return {a: busy / (span * max(1, capacity[a])) for a, busy in outcome.busy_ms.items()}


def compare_with_models(summary: Summary, outcome: Outcome) -> Summary:
    """Erlang C and the ideal FCFS queue, when every agent can take every conversation."""
    s = outcome.scenario
    servers = s.capacity
    if any(q.skills for q in s.queues):
        if s.rate * s.handle_s < servers:
            summary.pooled_erlang_c = erlang.predict(s.rate, s.handle_s, servers, s.sla_s)
        return summary
    if s.rate * (s.handle_s + s.accept_delay_s) < servers:
        if s.accept_delay_s:
            summary.erlang_c = erlang.predict_with_offer_delay(
                s.rate, s.handle_s, servers, s.accept_delay_s, s.sla_s
            )
        else:
            summary.erlang_c = erlang.predict(s.rate, s.handle_s, servers, s.sla_s)
    ideal = ideal_fcfs_waits(s)
    measured = range(s.warmup, s.arrivals)
    summary.ideal_mean_wait_s = statistics.fmean(ideal[i] for i in measured) / 1000
    summary.ideal_mismatches = sum(1 for i in measured if ideal[i] != outcome.wait_ms[i])
    return summary
