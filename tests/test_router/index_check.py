"""The agent index (presence/lua/_index.lua) checked against a full scan of the agents.

The index is a cache of what a scan of every agent would find: if a script forgets to keep
it in step, dispatch offers work in the wrong order or skips agents who have room, and no
other invariant would notice. This computes, from the skills, capacity, load, availability
and queue config read in one snapshot, every member the index should hold, independently of
the Lua code that maintains it, and reports the difference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from test_router.invariants import RoutingState

_CODES = {"least_loaded": "ll", "longest_idle": "li", "round_robin": "rr"}


def _pool(required: dict[str, Any] | None) -> str:
    """As requirement_pool in _index.lua."""
    parts = [f"{k}:{float(v):.17g}" for k, v in (required or {}).items() if float(v) > 0]
    return ",".join(sorted(parts))


def _meets(have: dict[str, Any], required: dict[str, Any]) -> bool:
    return all(float(have.get(k, 0)) >= float(v) for k, v in required.items())


def expected_index(s: RoutingState) -> set[str]:
    """Every member the index holds when it is in step with the state."""
    pools: dict[str, dict[str, Any]] = {"": {}}
    codes = set()
    for cfg in s.queue_config.values():
        pools.setdefault(_pool(cfg.get("skills")), cfg.get("skills") or {})
        for step in cfg.get("escalation", []):
            if step.get("skills") is not None:
                pools.setdefault(_pool(step["skills"]), step["skills"])
        codes.add(_CODES.get(cfg.get("strategy", "least_loaded"), "ll"))
    members = set()
    for agent, have in s.skills.items():
        total = s.capacity.get(f"{agent}|*")
        if agent not in s.available or (total is not None and s.load.get(f"{agent}|*", 0) >= total):
            continue
        idle = f"{s.assigned_ms(agent):015d}"
        met = [p for p, required in pools.items() if _meets(have, required)]
        for field, cap in s.capacity.items():
            owner, _, channel = field.rpartition("|")
            load = s.load.get(field, 0)
            if owner != agent or channel == "*" or cap <= 0 or load >= cap:
                continue
            ranks = {
                "ll": f"{load / cap:.12f}|{idle}|{agent}",
                "li": f"{idle}|{agent}",
                "rr": agent,
            }
            for pool in met:
                members |= {f"{code}|{pool}|{channel}|{ranks[code]}" for code in codes or {"ll"}}
    return members


def check_agent_index(s: RoutingState) -> list[str]:
    expected = expected_index(s)
    problems = [f"index: {m!r} is missing" for m in sorted(expected - s.agent_index)]
    problems += [f"index: {m!r} should not be there" for m in sorted(s.agent_index - expected)]
    return problems
