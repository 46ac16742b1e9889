"""What the Lua scripts know of a queue, worked out in Python from its config: the rules
stored as JSON in the queue config hash, the score that orders a queue, and the timers a
conversation starts with when it begins to wait. The scripts read these; they never read the
config itself, so the names and units here are the scripts' own."""

from __future__ import annotations

from typing import Any

from router.config import QueueConfig, on_agent_gone
from router.core import ms


def queue_score(priority: int, enqueued_ms: int) -> int:
    """Must match queue_score in lua/_common.lua."""
    return (9 - min(max(priority, 0), 9)) * 10**13 + enqueued_ms


def queue_rules(queue: QueueConfig) -> dict[str, Any]:
    """What the scripts need to know of a queue, stored as JSON in the queue config hash."""
    return _without_nulls(
        {
            "skills": queue.skills,
            "strategy": queue.strategy,
            "auto_accept": queue.auto_accept,
            "overflow": queue.overflow,
            "escalation": [
                {
                    "after_ms": ms(step.after_s),
                    "skills": step.skills,
                    "relax": step.relax_skills,
                    "overflow": step.overflow,
                    "raise": step.raise_priority,
                }
                for step in queue.escalation
            ],
            "ageing_ms": ms(queue.ageing_s),
            "max_wait_ms": ms(queue.max_wait_s),
            "after_max_wait": queue.after_max_wait,
            "idle_warn_ms": ms(queue.inactivity_warn_s),
            "idle_close_ms": ms(queue.inactivity_close_s),
            "on_agent_gone": on_agent_gone(queue),
        }
    )


def _without_nulls(value: Any) -> Any:
    """Lua's cjson turns JSON null into a userdata that is truthy: leave nulls out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def waiting_timers(queue: QueueConfig, enqueued_ms: int) -> list[str | int]:
    """The timers a new conversation in this queue starts with: kind, due ms, ..."""
    timers: list[str | int] = []
    if queue.escalation:
        timers += ["esc", enqueued_ms + ms(queue.escalation[0].after_s)]
    if queue.ageing_s > 0:
        timers += ["age", enqueued_ms + ms(queue.ageing_s)]
    if queue.max_wait_s > 0 and queue.after_max_wait != "none":
        timers += ["max", enqueued_ms + ms(queue.max_wait_s)]
    return timers
