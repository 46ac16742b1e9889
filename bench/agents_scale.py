"""How routing cost grows with the number of agents online: 100 to 10,000 agents, per strategy.

A routing decision that looks at every available agent gets slower as the centre grows, and
while a Lua script runs Redis serves nobody else; this benchmark shows by how much. For each
strategy and each size it starts a private redis-server and one gateway process with that many
agents (lite sockets, so that 10,000 fit in the generator), every agent available, and
measures three things:

- message → offer, median and p99, customers one after another (nothing queues, so this is
  the cost of one decision plus the wire);
- decisions per second at saturation: a closed loop of visitors that start a new conversation
  as soon as their last one closed, for a fixed time; routed conversations per second;
- Redis CPU per routed conversation in that loop (``INFO cpu`` deltas of the redis-server:
  every script and command of the conversation's life, and whatever the agents' presence
  costs meanwhile).

    .venv/bin/python bench/agents_scale.py                              # 100 .. 10,000, all three
    .venv/bin/python bench/agents_scale.py --agents 100,1000 --quick    # a quick look
    .venv/bin/python bench/agents_scale.py --source /tmp/zt-head --json scale.json

See BENCHMARKS.md, "Agents online".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_agents import AgentStats
from load_customers import Customers
from load_lite import lite_agents_running
from load_probes import CLK_TCK, cpu_seconds, machine_jiffies, scrape_all
from load_report import fmt, percentile
from load_stack import Target, own_stack
from load_wire import now, run
from scale_args import add_grid, read_grid

CONVERSATION_TIMEOUT_S = 30.0  # one conversation's whole life, on a busy machine


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_grid(p, "100,1000,3000,10000")
    p.add_argument("--quick", action="store_true", help="fewer samples and a shorter loop")
    p.add_argument("--conversations", type=int, help="sequential samples (default 200, quick 40)")
    p.add_argument("--warmup", type=int, help="unmeasured conversations first (20, quick 5)")
    p.add_argument("--saturation-s", type=float, help="closed-loop seconds (10, quick 3)")
    p.add_argument("--visitors", type=int, default=200, help="visitors in the closed loop")
    p.add_argument("--capacity", type=int, default=100, help="each agent's web chat capacity")
    p.add_argument("--source", metavar="DIR", help="run the gateway from this source tree")
    p.add_argument("--json", metavar="FILE", help="write every row to this file")
    args = p.parse_args(argv)
    read_grid(p, args)
    quick = args.quick
    args.conversations = args.conversations or (40 if quick else 200)
    args.warmup = args.warmup if args.warmup is not None else (5 if quick else 20)
    args.saturation_s = args.saturation_s or (3.0 if quick else 10.0)
    return args


def stack_args(args: argparse.Namespace, agents: int, strategy: str) -> argparse.Namespace:
    """What ``own_stack`` reads: one gateway, ``agents`` agents, one queue of ``strategy``."""
    return argparse.Namespace(
        agents=agents,
        capacity=args.capacity,
        config_extra="",
        wallboards=0,
        source=args.source,
        keep=False,
        gateways=1,
        strategy=strategy,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the stack on a timeout
    rows: list[dict[str, Any]] = []
    print(TABLE_HEADER, flush=True)
    for strategy in args.strategy_list:
        for size in args.sizes:
            with own_stack(stack_args(args, size, strategy)) as target:
                row = run(measure(args, target))
            row.update(strategy=strategy, agents=size)
            rows.append(row)
            print(table_row(row), flush=True)
            if args.json:  # after every row: a long run that is stopped keeps what it measured
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


async def measure(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    stats = AgentStats()
    customers = Customers(f"{random.getrandbits(32):x}")
    agent_urls = [f"{base}/agent/ws" for base in target.ws_bases]
    async with contextlib.AsyncExitStack() as stack:
        online_from = now()
        await stack.enter_async_context(lite_agents_running(agent_urls, target.tokens, stats))
        online_s = now() - online_from
        stack.push_async_callback(customers.aclose)
        visitor_urls = [f"{base}/webchat/ws" for base in target.ws_bases]
        await customers.connect(visitor_urls, args.visitors, False)
        for _ in range(args.warmup):
            await one_conversation(customers)
        latencies = []
        counters = await asyncio.to_thread(scrape_all, target.admin_bases)
        for _ in range(args.conversations):
            marker = await one_conversation(customers)
            if marker in stats.offers:
                latencies.append(stats.offers[marker] - customers.conversations[marker].sent)
        dispatch = dispatch_ms(counters, await asyncio.to_thread(scrape_all, target.admin_bases))
        loop = await saturate(customers, stats, target, args.saturation_s)
    ordered = sorted(1000 * t for t in latencies)
    return {
        "online_s": round(online_s, 1),
        "sequential": len(ordered),
        "offer_p50_ms": percentile(ordered, 50),
        "offer_p99_ms": percentile(ordered, 99),
        "dispatch_call_ms": dispatch,
        **loop,
        "errors": customers.errors + stats.errors,
        "error_samples": customers.samples + stats.samples,
        "generator_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def dispatch_ms(before: dict[str, float], after: dict[str, float]) -> float | None:
    """The gateway's mean routing call (one Lua round trip) between two scrapes, in ms: the
    part of message -> offer that the decision itself takes."""
    name = "zhongtai_dispatch_seconds"
    calls = after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0)
    spent = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
    return round(1000 * spent / calls, 2) if calls > 0 else None


async def one_conversation(customers: Customers) -> str | None:
    """One customer's conversation from the first message to the close; its marker."""
    marker = await customers.start(now())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(customers.idle.wait(), CONVERSATION_TIMEOUT_S)
    return marker


async def saturate(
    customers: Customers, stats: AgentStats, target: Target, seconds: float
) -> dict[str, Any]:
    """Every visitor starts a new conversation as soon as its last one closed, for
    ``seconds``: the rate at which they are routed is what one process and its Redis can do."""
    before = await asyncio.to_thread(probe, target)
    end = before["at"] + seconds
    while now() < end:
        while customers.free and now() < end:
            await customers.start(now())
        customers.freed.clear()
        if not customers.free:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(customers.freed.wait(), max(0.001, end - now()))
    after = await asyncio.to_thread(probe, target)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(customers.idle.wait(), CONVERSATION_TIMEOUT_S)
    window = after["at"] - before["at"]
    routed = sum(1 for at in stats.offers.values() if before["at"] <= at < after["at"])
    redis_cpu = after["redis_cpu_s"] - before["redis_cpu_s"]
    ours = {k: after[k] - before[k] for k in ("gateway_s", "redis_s", "generator_s")}
    machine = 100 * (after["busy"] - before["busy"]) / CLK_TCK / window
    return {
        "saturation_s": round(window, 2),
        "routed": routed,
        "decisions_per_s": round(routed / window, 1),
        "redis_cpu_ms_per_conversation": round(1000 * redis_cpu / routed, 3) if routed else None,
        "redis_cpu_percent": round(100 * redis_cpu / window, 1),
        "gateway_cpu_percent": round(100 * ours["gateway_s"] / window, 1),
        "generator_cpu_percent": round(100 * ours["generator_s"] / window, 1),
        "other_cpu_percent": round(max(0.0, machine - 100 * sum(ours.values()) / window), 1),
    }


def probe(target: Target) -> dict[str, float]:
    """Redis's own CPU count (``INFO cpu``), the processes' CPU and the machine's, now."""
    import redis

    client = redis.Redis.from_url(target.redis_url or "", socket_timeout=5.0)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return {
        "at": now(),
        "redis_cpu_s": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        "gateway_s": sum(cpu_seconds(pid) or 0.0 for pid in target.gateway_pids),
        "redis_s": cpu_seconds(target.redis_pid) or 0.0,
        "generator_s": cpu_seconds(os.getpid()) or 0.0,
        "busy": float(machine_jiffies()[0]),
    }


TABLE_HEADER = (
    "| strategy | agents online | offer p50 ms | offer p99 ms | dispatch call ms "
    "| Redis CPU ms / conversation "
    "| decisions/s at saturation | Redis CPU % | gateway CPU % | other CPU % | errors |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table_row(row: dict[str, Any]) -> str:
    return (
        f"| {row['strategy']} | {row['agents']:,} | {fmt(row['offer_p50_ms'])} "
        f"| {fmt(row['offer_p99_ms'])} | {fmt(row.get('dispatch_call_ms'), 2)} "
        f"| {fmt(row['redis_cpu_ms_per_conversation'], 2)} "
        f"| {fmt(row['decisions_per_s'], 0)} | {fmt(row['redis_cpu_percent'], 0)} "
        f"| {fmt(row['gateway_cpu_percent'], 0)} | {fmt(row['other_cpu_percent'], 0)} "
        f"| {row['errors']} |"
    )


if __name__ == "__main__":
    sys.exit(main())
