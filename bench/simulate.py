"""Discrete-event simulation of a contact centre against the real router on a real Redis.

Customers arrive as a Poisson process, agents accept their offers (at once or after a delay)
and handle each conversation for an exponentially distributed time; the clock is virtual, in
milliseconds, and every routing decision is made by the real ``Router`` Lua scripts on a
private redis-server (``Router`` and ``Presence`` take ``now_ms`` explicitly, which is what
lets hours of traffic run in seconds). After each arrival and each completion the simulator
calls ``Router.dispatch(now)``, and the offers it returns become accept events.

It prints the mean wait (arrival to accept), the share answered within the SLA and each
agent's occupancy, beside Erlang C's predictions, and, for one skill, the waits of an ideal
first-come-first-served M/M/N queue fed the same arrivals and handle times: a work-conserving
FCFS router must match it conversation by conversation.

    .venv/bin/python bench/simulate.py --rate 2 --handle-s 60 --agents 125 --arrivals 20000 --seed 1
    .venv/bin/python bench/simulate.py --scenario two-skill \\
        --strategies least_loaded,longest_idle,round_robin

Sampling error: the mean wait of a finite run varies a lot near full occupancy (at 96 %
occupancy the standard deviation of a 20,000-arrival run's mean wait is about 60 % of the
mean). BENCHMARKS.md ("Simulation") gives the run lengths that land within 10 % reliably.

The pieces beside this script: ``sim_scenarios`` (the contact centres), ``sim_workload`` (the
customers and the ideal queue), ``sim_engine`` (the event loop on the real router),
``sim_summary`` (the figures and the models) and ``sim_render`` (the printout).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_engine import Outcome, Simulation
from sim_render import render_single, render_table
from sim_scenarios import STRATEGIES, Scenario, single_skill, two_skill
from sim_summary import Summary, compare_with_models, summarise

from gateway.redis.embedded import RedisServer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=["single-skill", "two-skill"], default="single-skill")
    p.add_argument("--rate", type=float, help="arrivals per second (default 2; two-skill 0.5)")
    p.add_argument("--handle-s", type=float, default=60.0, help="mean handle time, seconds")
    p.add_argument("--agents", type=int, default=125, help="single-skill: number of agents")
    p.add_argument(
        "--mix", default="14,8,12", help="two-skill: general-only, billing-only, both-skill agents"
    )
    p.add_argument("--billing-share", type=float, default=0.3, help="two-skill arrivals share")
    p.add_argument("--capacity", type=int, default=1, help="conversations per agent at once")
    p.add_argument("--arrivals", type=int, default=20000)
    p.add_argument("--warmup", type=int, help="arrivals left out (default: 10 %%, <= 10000)")
    p.add_argument("--accept-delay-s", type=float, default=0.0)
    p.add_argument("--sla-s", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--strategy", default="least_loaded", help="single-skill strategy")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="two-skill strategies")
    p.add_argument("--redis-url", help="an existing Redis (default: a private redis-server)")
    p.add_argument("--json", type=Path, help="write the summaries here")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop  # type: ignore[import-not-found]

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    summaries = runner(amain(args))
    return 0 if all(m.conserved for m in summaries) else 1


async def amain(args: argparse.Namespace) -> list[Summary]:
    summaries = []
    async with redis_at(args.redis_url) as redis:
        for scenario in scenarios_from(args):
            if not args.quiet:
                print(f"running {scenario.name} / {scenario.strategy} ...", file=sys.stderr)
            summary, _ = await simulate(redis, scenario, progress=not args.quiet)
            summaries.append(summary)
            print(render_single(summary), flush=True)
            print(flush=True)
    if len(summaries) > 1 or args.scenario == "two-skill":
        print(render_table(summaries))
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(summaries)))
    return summaries


def scenarios_from(args: argparse.Namespace) -> list[Scenario]:
    warmup = args.warmup if args.warmup is not None else default_warmup(args.arrivals)
    common = {
        "handle_s": args.handle_s,
        "arrivals": args.arrivals,
        "warmup": warmup,
        "seed": args.seed,
        "accept_delay_s": args.accept_delay_s,
        "sla_s": args.sla_s,
        "capacity": args.capacity,
    }
    if args.scenario == "single-skill":
        rate = 2.0 if args.rate is None else args.rate
        return [single_skill(args.agents, rate, strategy=args.strategy, **common)]
    mix = tuple(int(x) for x in args.mix.split(","))
    if len(mix) != 3:
        raise SystemExit("--mix takes three numbers: general-only,billing-only,both")
    rate = 0.5 if args.rate is None else args.rate
    return [
        two_skill(s.strip(), rate, agents=mix, billing_share=args.billing_share, **common)  # type: ignore[arg-type]
        for s in args.strategies.split(",")
    ]


def default_warmup(arrivals: int) -> int:
    """10 % of the run, at most 10,000 arrivals. At 2/s, 60 s and 125 agents the queue forgets
    its empty start in about 1/(N mu (1 - sqrt(rho))^2) = 20 minutes (2,400 arrivals); 10,000
    arrivals are four of those. Longer warm-ups only waste the run."""
    return min(arrivals // 10, 10_000)


async def simulate(
    redis: Any, scenario: Scenario, tenant: str | None = None, progress: bool = False
) -> tuple[Summary, Outcome]:
    """Run one scenario on its own tenant and summarise it."""
    sim = Simulation(redis, tenant or "sim" + uuid.uuid4().hex[:10], scenario)
    await sim.setup()
    outcome = await sim.run(progress=progress)
    return compare_with_models(summarise(sim, outcome), outcome), outcome


@contextlib.asynccontextmanager
async def redis_at(url: str | None) -> AsyncIterator[Any]:
    """A client on ``url``, or on a private, non-persistent redis-server started here."""
    server = None
    if url is None:
        server = RedisServer(persistent=False, unix_socket=True).start()
        url = server.url
    client = client_for(url)
    try:
        yield client
    finally:
        await client.aclose()
        if server is not None:
            server.stop()


def client_for(url: str) -> Any:
    """A bytes-mode RESP2 client. The simulation makes one call at a time, so one connection
    serves it; a plain pool is measurably faster here than the gateway's blocking pool."""
    return aioredis.Redis.from_url(
        url, protocol=2, decode_responses=False, socket_timeout=60.0, socket_connect_timeout=10.0
    )


if __name__ == "__main__":
    raise SystemExit(main())
