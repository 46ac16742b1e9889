"""The sizes x strategies grid that the agents-online benchmarks share (agents_scale.py, a
gateway in the way; dispatch_rate.py, Redis alone), read and checked in one place so that
both take the same ``--agents`` and ``--strategies``."""

from __future__ import annotations

import argparse

STRATEGIES = ("least_loaded", "longest_idle", "round_robin")


def add_grid(p: argparse.ArgumentParser, sizes: str) -> None:
    p.add_argument("--agents", default=sizes, help="sizes, comma-separated")
    p.add_argument(
        "--strategies", default=",".join(STRATEGIES), help="queue strategies, comma-separated"
    )


def read_grid(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.sizes`` and ``args.strategy_list`` from the options, or a usage error."""
    try:
        args.sizes = [int(n) for n in args.agents.split(",") if n.strip()]
    except ValueError:
        p.error(f"--agents: {args.agents!r} is not a comma-separated list of numbers")
    args.strategy_list = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for strategy in args.strategy_list:
        if strategy not in STRATEGIES:
            p.error(f"--strategies: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if not args.sizes or min(args.sizes) < 1 or not args.strategy_list:
        p.error("--agents and --strategies need at least one positive size and one strategy")
