"""Load generator: new web chat conversations at Poisson arrivals, answered by bot agents.

By default it starts its own private redis-server and one ``zhongtai serve`` process, so that a
run measures nothing but this code on this machine; with ``--url`` it targets a gateway that is
already running on 127.0.0.1 (repeat ``--url`` for several processes on one Redis: agents and
visitors are spread over them in turn; ``--gateways N`` starts N of its own). Customers are a
pool of pre-connected visitor sockets (a real widget connects once and then writes; connecting
hundreds of sockets a second would measure TCP and HTTP upgrade handshakes, not routing).
``--lite`` agents are minimal sockets, so that thousands fit in the generator. Agents accept
every offer at once, reply once and close, which frees the visitor for its next conversation.

Per conversation it measures the time from the customer's send to the agent's ``offer`` (matched
by a unique marker in the message text) and to the customer's own echo (the message is stored).

    .venv/bin/python bench/load.py --rate 500 --duration 20
    .venv/bin/python bench/load.py --rate 500 --duration 20 --agent-procs 1 --json out.json

See bench/README.md and BENCHMARKS.md.

The pieces beside this script: ``load_stack`` (the gateway and Redis under test),
``load_agents`` and ``load_customers`` (the two sides of every conversation), ``load_wire``
(what they share), ``load_probes`` (CPU and counters) and ``load_report`` (the result).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from load_agents import AgentStats, agent_processes, agents_running
from load_customers import Customers, arrivals, drain
from load_lite import lite_agents_running
from load_probes import sample, wait_idle
from load_report import report, summarize, write_trace
from load_stack import Target, given_target, own_stack, start_profiler
from load_wallboards import WallboardStats, wallboards_open
from load_wire import now, run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100.0, help="new conversations per second")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before")
    p.add_argument("--drain", type=float, default=10.0, help="most seconds to wait at the end")
    p.add_argument(
        "--visitors",
        type=int,
        default=0,
        help="pre-connected visitor sockets (default: one second of arrivals, >= 50)",
    )
    p.add_argument("--agents", type=int, default=20, help="agents in the generated config")
    p.add_argument("--capacity", type=int, default=1000, help="each agent's web chat capacity")
    p.add_argument(
        "--agent-procs",
        type=int,
        default=0,
        help="run the agents in this many separate processes (0: in this one)",
    )
    p.add_argument(
        "--config-extra",
        default="",
        metavar="TOML",
        help='appended to the generated config, e.g. "[redis]\\npool_size = 256"',
    )
    p.add_argument(
        "--deflate",
        action="store_true",
        help="negotiate permessage-deflate, as browsers do (default: off)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the arrival process")
    p.add_argument(
        "--source",
        metavar="DIR",
        help="run the gateway from this source tree (e.g. a `git archive` snapshot) "
        "instead of the installed one",
    )
    p.add_argument(
        "--url",
        action="append",
        default=[],
        help="a running gateway's public base, e.g. http://127.0.0.1:8080 (repeat: agents and "
        "visitors are spread over the processes)",
    )
    p.add_argument(
        "--admin-url",
        action="append",
        default=[],
        help="its admin base, e.g. http://127.0.0.1:9180 (repeat, one per --url)",
    )
    p.add_argument(
        "--gateways",
        type=int,
        default=1,
        help="gateway processes to start on the private Redis (without --url)",
    )
    p.add_argument(
        "--sentinel",
        action="store_true",
        help="Redis Sentinel instead of one server: a master, a replica and three sentinels",
    )
    p.add_argument(
        "--min-replica-acks",
        type=int,
        default=0,
        help="with --sentinel: [redis] min_replica_acks (wait for a replica before an ack)",
    )
    p.add_argument(
        "--strategy",
        default="least_loaded",
        choices=("least_loaded", "longest_idle", "round_robin"),
        help="the generated queue's strategy",
    )
    p.add_argument(
        "--lite",
        action="store_true",
        help="agents as minimal sockets (a few hundred bytes each), for thousands of agents",
    )
    p.add_argument(
        "--agent-token",
        action="append",
        default=[],
        help="an agent token of the running gateway (repeat)",
    )
    p.add_argument(
        "--gateway-pid",
        type=int,
        action="append",
        default=[],
        help="a running gateway's pid, for its CPU time (repeat)",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="py-spy record the gateway during the measured window (.svg, .json, .txt)",
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle",
    )
    p.add_argument(
        "--wallboards",
        type=int,
        default=0,
        help="team leads' wallboard sockets open during the run (default: none)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary dir (config, logs)")
    p.add_argument("--json", metavar="FILE", help="write the results to this file")
    p.add_argument(
        "--trace",
        metavar="FILE",
        help="write one CSV line per conversation: sent s, to echo ms, to offer ms",
    )
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        p.error("--rate and --duration must be positive")
    if args.url and not args.agent_token:
        p.error("--url needs the gateway's agents: --agent-token TOKEN (repeat)")
    if args.min_replica_acks and not args.sentinel:
        p.error("--min-replica-acks needs --sentinel (a replica to wait for)")
    if args.gateways < 1:
        p.error("--gateways must be at least 1")
    if args.lite and args.deflate:
        p.error("--lite agents do not negotiate compression; drop --deflate or --lite")
    if not args.visitors:
        args.visitors = max(50, int(args.rate))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C, so the gateway and Redis are
    # stopped and the temporary dir is removed.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.wait_idle:
        busy = wait_idle(args.wait_idle)
        if busy >= 0.15:
            print(f"warning: the machine is still {100 * busy:.0f}% busy", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        target = given_target(args) if args.url else stack.enter_context(own_stack(args))
        result = run(measure(args, target))
    print(report(result))
    if result["other_cpu_percent"] > 10:
        print(
            f"warning: other processes used {result['other_cpu_percent']:.0f}% of a core "
            "during the measurement; the figures are not trustworthy",
            file=sys.stderr,
        )
    for sample_text in result["error_samples"]:
        print(f"  error: {sample_text}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


async def measure(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    run_id = f"{random.getrandbits(32):x}"
    customers, agents, boards = Customers(run_id), AgentStats(), WallboardStats()
    agent_urls = [f"{base}/agent/ws" for base in target.ws_bases]
    pids: dict[str, list[int]] = {
        "gateway": list(target.gateway_pids),
        "redis": [target.redis_pid] if target.redis_pid else [],
        "generator": [os.getpid()],
    }
    async with contextlib.AsyncExitStack() as stack:
        if args.agent_procs > 0:
            pids["agents"] = await stack.enter_async_context(
                agent_processes(
                    agent_urls, target.tokens, args.agent_procs, args.deflate, agents, args.lite
                )
            )
        elif args.lite:
            await stack.enter_async_context(lite_agents_running(agent_urls, target.tokens, agents))
        else:
            await stack.enter_async_context(
                agents_running(agent_urls, target.tokens, args.deflate, agents)
            )
        if args.wallboards:
            await stack.enter_async_context(
                wallboards_open(f"{target.ws_bases[0]}/supervisor/ws", args.wallboards, boards)
            )
        stack.push_async_callback(customers.aclose)
        visitor_urls = [f"{base}/webchat/ws" for base in target.ws_bases]
        await customers.connect(visitor_urls, args.visitors, args.deflate)
        start = now()
        window = (start + args.warmup, start + args.warmup + args.duration)
        load = asyncio.create_task(
            arrivals(customers, args.rate, start, window[1], random.Random(args.seed))
        )
        await until(window[0])
        first = await asyncio.to_thread(sample, pids, target)
        boards_before = boards.frames
        profiler = (
            start_profiler(args.profile, next(iter(target.gateway_pids), None), args.duration)
            if args.profile
            else None
        )
        await until(window[1])
        last = await asyncio.to_thread(sample, pids, target)
        boards_in_window = boards.frames - boards_before
        await load
        await drain(customers, args.drain)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)
    if args.trace:
        write_trace(args.trace, customers, agents.offers, start)
    result = summarize(args, target, customers, agents, first, last)
    result["wallboards"] = args.wallboards
    if args.wallboards:
        window = last.at - first.at
        result["wallboard_frames_per_s"] = round(boards_in_window / window, 1)
        result["wallboard_bytes_per_frame"] = boards.bytes // max(1, boards.frames)
        result["error_samples"] += boards.errors[:5]
    return result


async def until(moment: float) -> None:
    delay = moment - now()
    if delay > 0:
        await asyncio.sleep(delay)


if __name__ == "__main__":
    sys.exit(main())
