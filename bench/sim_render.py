"""How a simulation's summaries are printed: one block per run, a table per comparison.

The block puts the simulated figures beside Erlang C's and ends with the conservation
verdict; the markdown table compares routing strategies on the same workload.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import erlang
from sim_summary import Summary


def render_single(m: Summary) -> str:
    o = m.overall
    e = m.erlang_c
    lines = [
        f"scenario {m.scenario}: {m.agents} agents (capacity {m.capacity} in all), "
        f"strategy {m.strategy}, rate {m.rate:g}/s, handle {m.handle_s:g} s, "
        f"accept delay {m.accept_delay_s:g} s, seed {m.seed}",
        f"arrivals {m.arrivals} (first {m.warmup} excluded as warm-up), measured "
        f"{m.virtual_s / 3600:.2f} h of virtual time in {m.wall_s:.1f} s wall "
        f"({m.arrivals / max(m.wall_s, 1e-9):.0f} arrivals/s)",
        "",
        f"{'':28}{'simulated':>12}{'Erlang C':>12}",
        _row("mean wait (s)", f"{o.mean_wait_s:.2f}", e and f"{e.mean_wait_s:.2f}"),
        _row("P(queued)", f"{o.waited_share:.3f}", e and f"{e.prob_wait:.3f}"),
        _row(
            f"answered within {m.sla_s:g} s", f"{o.within_sla:.3f}", e and f"{e.service_level:.3f}"
        ),
        _row("occupancy, mean of agents", f"{m.occupancy_mean:.3f}", e and f"{e.occupancy:.3f}"),
        f"  95 % batch-means interval of the simulated mean wait: "
        f"{o.ci95_s[0]:.2f} .. {o.ci95_s[1]:.2f} s",
        f"  occupancy per agent: min {m.occupancy_min:.3f}, max {m.occupancy_max:.3f}",
    ]
    if e is not None:
        gap = o.mean_wait_s / e.mean_wait_s - 1 if e.mean_wait_s else math.nan
        lines.append(f"  simulated mean wait vs Erlang C: {100 * gap:+.1f} %")
    if m.ideal_mean_wait_s is not None:
        lines.append(
            f"  ideal FCFS M/M/{m.capacity} on the same arrivals: mean wait "
            f"{m.ideal_mean_wait_s:.2f} s; the router's wait differs on "
            f"{m.ideal_mismatches} of {o.measured} conversations"
        )
    if m.pooled_erlang_c is not None:
        lines.append(_pooled(m.pooled_erlang_c))
    lines.append(_conservation(m))
    return "\n".join(lines)


def _row(label: str, sim: str, model: str | None) -> str:
    return f"{label:28}{sim:>12}{model or '-':>12}"


def _pooled(e: erlang.ErlangC) -> str:
    return (
        f"  Erlang C if every agent had every skill ({e.agents} servers): mean wait "
        f"{e.mean_wait_s:.2f} s, within {e.sla_s:g} s {_pct(e.service_level)}"
    )


def _conservation(m: Summary) -> str:
    verdict = "ok" if m.conserved else "BROKEN"
    return (
        f"conservation {verdict}: {m.arrivals} arrivals, {m.offers} offers, {m.accepts} "
        f"accepts, {m.closes} closes, most conversations one agent held at once {m.max_load}, "
        f"left in Redis {m.redis_final}"
    )


def render_table(rows: Sequence[Summary]) -> str:
    """The strategy comparison as a markdown table."""
    names = [q.name for q in rows[0].queues]
    groups = list(rows[0].occupancy_by_group)
    head = ["strategy", "mean wait all (s)"]
    head += [f"mean wait {n} (s)" for n in names]
    head += [f"within {rows[0].sla_s:g} s {n}" for n in names]
    head += ["within SLA all", "occupancy mean / min / max"]
    head += [f"occ. {g}" for g in groups]
    head += ["wall (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in rows:
        cells = [m.strategy, f"{m.overall.mean_wait_s:.1f}"]
        cells += [f"{q.mean_wait_s:.1f}" for q in m.queues]
        cells += [_pct(q.within_sla) for q in m.queues]
        cells += [_pct(m.overall.within_sla)]
        cells += [f"{m.occupancy_mean:.3f} / {m.occupancy_min:.3f} / {m.occupancy_max:.3f}"]
        cells += [f"{m.occupancy_by_group[g]:.3f}" for g in groups]
        cells += [f"{m.wall_s:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"
