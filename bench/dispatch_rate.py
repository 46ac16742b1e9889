"""Routing decisions per second that Redis alone sustains, 100 to 10,000 agents, per strategy.

bench/agents_scale.py measures through one gateway process, which saturates long before its
Redis does on a small machine, so it cannot say whether the decision itself (one Lua call of
router/lua/dispatch.lua over the agent index) meets the goal of 2,000 decisions per second in
one tenant with 10,000 agents. This benchmark leaves the gateway out: it starts a private
redis-server, puts one tenant's agents online and enqueues conversations through the
project's own Router and Presence (no websockets), then several concurrent clients call the
dispatch script exactly as the gateway does (``Router.dispatch``, one Lua round trip per
call) for a fixed time. Two loads: a backlog enqueued first (each call scans up to
``scan_limit`` waiting conversations and makes up to ``--batch`` offers), or ``--arrivals``,
each call following one new conversation (the queue stays short, as when nothing queues;
the figures then include the ingest). It reports:

- decisions (offers made) per second, and dispatch calls per second;
- Redis CPU (``INFO cpu`` delta) per decision: what each costs the one Redis thread;
- the script's mean time inside Redis (``INFO commandstats``, evalsha usec_per_call), whose
  inverse is the ceiling one Redis core could reach if the clients were free.

    .venv/bin/python bench/dispatch_rate.py                        # 100 and 10,000, all three
    .venv/bin/python bench/dispatch_rate.py --agents 10000 --seconds 3 --strategies round_robin
    .venv/bin/python bench/dispatch_rate.py --batch 1 --arrivals     # one decision per call

See BENCHMARKS.md, "Agents online with the agent index".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from scale_args import add_grid, read_grid

from adapters.model import Customer, Message
from gateway.config import AgentConfig, CoreConfig, with_defaults
from gateway.redis.embedded import INSTALL_HINT, RedisServer, find_redis_server
from presence.registry import Presence
from router.config import QueueConfig, RoutingConfig
from router.engine import Router
from router.ids import new_id
from router.results import Placement

TENANT = "bench"
QUEUE = "general"
SETUP_CONCURRENCY = 64  # setup calls in flight; setup is not measured


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_grid(p, "100,10000")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per row")
    p.add_argument("--clients", type=int, default=16, help="concurrent dispatch callers")
    p.add_argument(
        "--batch",
        type=int,
        default=RoutingConfig().dispatch_batch,
        help="most offers per dispatch call (default: the gateway's [routing] dispatch_batch)",
    )
    p.add_argument(
        "--conversations", type=int, default=40_000, help="enqueued before each row is measured"
    )
    p.add_argument(
        "--arrivals",
        action="store_true",
        help="each client enqueues one conversation before each dispatch call (no backlog)",
    )
    p.add_argument("--json", metavar="FILE", help="write every row to this file")
    args = p.parse_args(argv)
    read_grid(p, args)
    if min(args.clients, args.batch, args.conversations) < 1 or args.seconds <= 0:
        p.error("--clients, --batch, --conversations and --seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    binary = find_redis_server()
    if binary is None:
        print(f"no redis-server: {INSTALL_HINT}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    print(TABLE_HEADER, flush=True)
    for strategy in args.strategy_list:
        for size in args.sizes:
            # A fresh server per row: no row's keys or statistics leak into the next.
            with RedisServer(binary=binary) as server:
                row = asyncio.run(measure(args, server, size, strategy))
            rows.append(row)
            print(table_row(row), flush=True)
            if args.json:  # after every row: a run that is stopped keeps what it measured
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


async def measure(
    args: argparse.Namespace, server: RedisServer, agents: int, strategy: str
) -> dict[str, Any]:
    client = aioredis.Redis.from_url(
        server.url, max_connections=max(args.clients, SETUP_CONCURRENCY) + 4
    )
    try:
        router = await tenant_online(client, args, agents, strategy)
        before = await probe(client)
        started = time.perf_counter()
        end = started + args.seconds
        counts = await asyncio.gather(
            *(decide(router, end, f"c{n}" if args.arrivals else None) for n in range(args.clients))
        )
        window = time.perf_counter() - started
        after = await probe(client)
        left = await client.zcard(router.keys.queue(QUEUE))
    finally:
        await client.aclose()
    offers = sum(made for made, _ in counts)
    calls = sum(called for _, called in counts)
    redis_cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "strategy": strategy,
        "agents": agents,
        "batch": args.batch,
        "arrivals": args.arrivals,
        "seconds": round(window, 2),
        "decisions": offers,
        "decisions_per_s": round(offers / window, 1),
        "calls_per_s": round(calls / window, 1),
        "redis_cpu_percent": round(100 * redis_cpu / window, 1),
        "redis_cpu_us_per_decision": round(1e6 * redis_cpu / offers, 1) if offers else None,
        "script_us_per_call": after["script_us"],
        "queue_left": left,
        "drained": left == 0,
    }


async def tenant_online(
    client: aioredis.Redis, args: argparse.Namespace, agents: int, strategy: str
) -> Router:
    """One tenant, one queue of ``strategy``, ``agents`` agents available with room for
    every conversation, and ``args.conversations`` conversations waiting."""
    # Arrivals: room for as many more as the backlog would have had.
    room = -(-2 * args.conversations // agents) + 1
    core = with_defaults(
        CoreConfig(
            agents=[
                AgentConfig(id=f"a{i:05d}", token="x", capacity={"webchat": room})
                for i in range(agents)
            ],
            queues=[QueueConfig(name=QUEUE, strategy=strategy)],
        )
    )
    core.routing.dispatch_batch = args.batch
    router = Router(client, TENANT, core.queues, core.routing, core.routing.default_queue)
    presence = Presence(client, TENANT)
    await router.sync_queues()
    await presence.sync_agents(core.agents)
    await bounded(
        [presence.connect(a.id, "node-1", f"conn-{a.id}", "available") for a in core.agents]
    )
    now = now_ms()
    if not args.arrivals:
        await bounded([enqueue(router, f"v{n}", now + n) for n in range(args.conversations)])
    return router


async def enqueue(router: Router, customer: str, at: int) -> None:
    message = Message(
        id=new_id("m", at),
        direction="in",
        text="hello",
        sent_at=datetime.fromtimestamp(at / 1000, UTC),
    )
    placement = Placement(queue=QUEUE, priority=router.queues[QUEUE].priority)
    who = Customer(id=customer)
    await router.ingest("webchat", "default", customer, who, message, at, placement)


async def bounded(calls: list[Any]) -> None:
    """Await ``calls`` with at most SETUP_CONCURRENCY in flight (a pool of connections, not
    one per call)."""
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(call: Any) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


async def decide(router: Router, end: float, arrivals: str | None) -> tuple[int, int]:
    """Call dispatch until ``end`` or the backlog is empty: (offers made, calls). With
    ``arrivals`` (this client's customer prefix), each call follows one new conversation,
    as in the gateway when conversations come one at a time and nothing queues."""
    offers = calls = 0
    while time.perf_counter() < end:
        if arrivals is not None:
            await enqueue(router, f"{arrivals}-{calls}", now_ms())
        made = await router.dispatch(now_ms())
        calls += 1
        offers += len(made)
        if not made and arrivals is None:
            break  # nothing left to offer: more calls would measure an empty queue
    return offers, calls


async def probe(client: aioredis.Redis) -> dict[str, float]:
    """Redis's CPU seconds so far and the dispatch script's mean time since the last
    statistics reset, which this probe then resets."""
    cpu = await client.info("cpu")
    stats = await client.info("commandstats")
    await client.config_resetstat()
    evalsha = stats.get("cmdstat_evalsha", {})
    return {
        "cpu_s": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        "script_us": round(float(evalsha.get("usec_per_call", 0.0)), 1),
    }


def now_ms() -> int:
    return int(time.time() * 1000)


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


TABLE_HEADER = (
    "| strategy | agents online | load | decisions/s | dispatch calls/s | Redis CPU % "
    "| Redis CPU µs / decision | evalsha µs / call (commandstats) | queue drained |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---|"
)


def table_row(row: dict[str, Any]) -> str:
    return (
        f"| {row['strategy']} | {row['agents']:,} "
        f"| {'arrivals' if row['arrivals'] else 'backlog'}, batch {row['batch']} "
        f"| {fmt(row['decisions_per_s'])} "
        f"| {fmt(row['calls_per_s'])} | {fmt(row['redis_cpu_percent'])} "
        f"| {fmt(row['redis_cpu_us_per_decision'], 1)} | {fmt(row['script_us_per_call'], 1)} "
        f"| {'yes' if row['drained'] else 'no'} |"
    )


if __name__ == "__main__":
    sys.exit(main())
