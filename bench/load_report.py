"""The result of a run: timings and rates from the raw records, and how they are printed.

Only conversations sent inside the measured window count; CPU and counters are the difference
of the samples taken at its edges. The result is a dict (``--json`` writes it as it is), a
one-line summary and a markdown row for BENCHMARKS.md, and optionally one CSV line per
conversation.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_agents import AgentStats
from load_customers import Customers
from load_probes import CLK_TCK, Sample
from load_stack import Target


def summarize(
    args: argparse.Namespace,
    target: Target,
    customers: Customers,
    agents: AgentStats,
    first: Sample,
    last: Sample,
) -> dict[str, Any]:
    window = last.at - first.at
    measured = {m: c for m, c in customers.conversations.items() if first.at <= c.sent < last.at}
    offered_at = agents.offers
    to_offer = [offered_at[m] - c.sent for m, c in measured.items() if m in offered_at]
    to_echo = [c.echo - c.sent for c in measured.values() if c.echo is not None]
    lateness = [c.sent - c.scheduled for c in measured.values()]
    unrouted = sum(1 for m in measured if m not in offered_at)
    unclosed = sum(1 for c in customers.conversations.values() if c.closed is None)
    routed = sum(1 for t in offered_at.values() if first.at <= t < last.at)
    cpu = {
        name: (
            None
            if last.cpu[name] is None or first.cpu[name] is None
            else round(100 * (last.cpu[name] - first.cpu[name]) / window, 1)
        )  # type: ignore[operator]
        for name in last.cpu
    }
    # Everything else that ran meanwhile, in % of one core: on a shared machine, a reason to
    # distrust the figures. (Our own processes' shares add up from the same clock ticks.)
    busy = last.machine[0] - first.machine[0]
    cores = (last.machine[1] - first.machine[1]) / CLK_TCK / window
    machine_percent = 100 * busy / CLK_TCK / window
    ours = sum(v for v in cpu.values() if v is not None)
    calls = _delta(first, last, "zhongtai_dispatch_seconds_count")
    offers_made = _delta(first, last, "zhongtai_offers_made_total")
    call_s = _delta(first, last, "zhongtai_dispatch_seconds_sum")
    per_conversation = {
        name: round((calls - first.commands.get(name, 0)) / max(1, routed), 2)
        for name, calls in sorted(last.commands.items(), key=lambda kv: -kv[1])
        if calls - first.commands.get(name, 0) > 0 and name != "info"
    }
    return {
        "rate": args.rate,
        "duration_s": round(window, 3),
        "visitors": args.visitors,
        "agents": len(target.tokens),
        "agent_procs": args.agent_procs,
        "gateways": len(target.ws_bases),
        "lite_agents": args.lite,
        "sentinel": args.sentinel,
        "min_replica_acks": args.min_replica_acks,
        "deflate": args.deflate,
        "sent": len(measured),
        "sent_per_s": round(len(measured) / window, 1),
        "routed_per_s": round(routed / window, 1),
        "message_to_offer_ms": ms(to_offer),
        "message_to_echo_ms": ms(to_echo),
        "send_lateness_ms": ms(lateness),
        "errors": customers.errors + agents.errors + unrouted + unclosed,
        "unrouted": unrouted,
        "unclosed": unclosed,
        "starved": customers.starved,
        "error_samples": customers.samples + agents.samples,
        "cpu_percent": cpu,
        "machine_cpu_percent": round(machine_percent, 1),
        "other_cpu_percent": round(max(0.0, machine_percent - ours), 1),
        "cores": round(cores),
        "dispatch_calls_per_s": None if calls is None else round(calls / window, 1),
        "offers_per_dispatch": (
            None if not calls or offers_made is None else round(offers_made / calls, 2)
        ),
        "dispatch_call_ms": (
            None if not calls or call_s is None else round(1000 * call_s / calls, 3)
        ),
        "redis_commands_per_conversation": per_conversation,
        "gateway_command": target.command,
        "gateway_source": args.source or "installed",
    }


def _delta(first: Sample, last: Sample, name: str) -> float | None:
    if name not in first.metrics or name not in last.metrics:
        return None
    return last.metrics[name] - first.metrics[name]


def ms(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(round(v * 1000, 3) for v in values)
    return {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else None,
    }


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[min(len(ordered), int(rank)) - 1]


def report(result: dict[str, Any]) -> str:
    o, e, cpu = result["message_to_offer_ms"], result["message_to_echo_ms"], result["cpu_percent"]
    generator = [v for k, v in cpu.items() if k in ("generator", "agents") and v is not None]
    line = (
        f"rate {result['rate']:g}/s for {result['duration_s']:.1f} s: routed "
        f"{result['routed_per_s']:.1f}/s, message->offer p50 {fmt(o['p50'])} p90 {fmt(o['p90'])} "
        f"p99 {fmt(o['p99'])} max {fmt(o['max'])} ms, echo p50 {fmt(e['p50'])} p99 "
        f"{fmt(e['p99'])} ms, errors {result['errors']}, starved {result['starved']}, CPU % "
        f"gateway {fmt(cpu.get('gateway'), 0)} redis {fmt(cpu.get('redis'), 0)} generator "
        f"{fmt(sum(generator) if generator else None, 0)}"
    )
    row = (
        f"| {result['rate']:g} | {result['routed_per_s']:.1f} | {fmt(o['p50'])} | {fmt(o['p90'])} "
        f"| {fmt(o['p99'])} | {fmt(o['max'])} | {fmt(e['p50'])} | {fmt(e['p99'])} "
        f"| {result['errors']} | {result['starved']} | {fmt(cpu.get('gateway'), 0)} "
        f"| {fmt(cpu.get('redis'), 0)} | {fmt(sum(generator) if generator else None, 0)} |"
    )
    return f"{line}\n{TABLE_HEADER}\n{row}"


TABLE_HEADER = (
    "| rate/s | routed/s | offer p50 ms | p90 | p99 | max | echo p50 ms | echo p99 | errors "
    "| starved | gateway CPU % | redis CPU % | generator CPU % |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_trace(path: str, customers: Customers, offers: dict[str, float], zero: float) -> None:
    """Per-conversation timings, to see whether slow ones cluster in time (pauses)."""
    lines = ["sent_s,echo_ms,offer_ms"]
    for marker, c in customers.conversations.items():
        echo = "" if c.echo is None else f"{1000 * (c.echo - c.sent):.3f}"
        offer = "" if marker not in offers else f"{1000 * (offers[marker] - c.sent):.3f}"
        lines.append(f"{c.sent - zero:.4f},{echo},{offer}")
    Path(path).write_text("\n".join(lines) + "\n")
