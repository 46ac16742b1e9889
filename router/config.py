"""The routing tables of the configuration: queues with their escalation steps, business
hours, classification rules, complaint grades and the ``[routing]`` settings. The router and
placement read these Structs as they are; the gateway decodes them from its TOML file.
docs/routing.md explains each setting."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

import msgspec

Strategy = Literal["least_loaded", "longest_idle", "round_robin"]
AfterMaxWait = Literal["none", "auto_reply", "leave_message", "close"]
OnAgentGone = Literal["requeue", "keep"]
DeadlineAction = Literal["raise_priority", "move_to_queue", "notify_leads"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Level = Annotated[int, msgspec.Meta(ge=1, le=5)]
Priority = Annotated[int, msgspec.Meta(ge=0, le=9)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
# How often a loop runs: 0 would run it back to back, a busy loop against Redis.
Interval = Annotated[float, msgspec.Meta(gt=0)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
TimeRange = Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}-\d{2}:\d{2}$")]


# Channels where the customer is there, waiting for an answer now: a conversation whose
# agent has gone goes to another agent rather than wait for theirs (on_agent_gone).
LIVE_CHANNELS = ("webchat", "wechat")


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EscalationStep(Strict):
    """What happens to a conversation once it has waited ``after_s`` seconds."""

    after_s: Seconds
    skills: dict[str, Level] | None = None  # replaces the required skill levels
    relax_skills: bool = False  # drops every skill requirement
    overflow: bool = False  # the overflow queue's agents may take it too
    raise_priority: Annotated[int, msgspec.Meta(ge=0, le=9)] = 0


class QueueConfig(Strict):
    name: str
    channels: list[str] = []
    skills: dict[str, Level] = {}
    strategy: Strategy = "least_loaded"
    priority: Priority = 0
    sla_s: Seconds = 60.0
    auto_accept: bool = False
    ageing_s: Seconds = 0.0
    escalation: list[EscalationStep] = []
    overflow: str | None = None
    max_wait_s: Seconds = 0.0
    after_max_wait: AfterMaxWait = "none"
    max_wait_message: str = (
        "Sorry for the wait. All our agents are busy; leave us a message and we will answer "
        "as soon as we can."
    )
    hours: str | None = None
    after_hours_queue: str | None = None
    closed_message: str = "We are closed now. We will answer when we open."
    sticky_wait_s: Seconds = 20.0
    inactivity_warn_s: Seconds = 0.0
    inactivity_close_s: Seconds = 0.0
    inactivity_warning: str = "Are you still there? This conversation will close soon."
    inactivity_close_message: str = "This conversation was closed after a time without messages."
    position_auto_reply: bool = False
    position_message: str = "You are number {position} in the queue."
    # What becomes of the conversations an agent has answered when the agent is gone for good
    # (past the grace period, or set offline by a supervisor); None: by the queue's channels,
    # see on_agent_gone(). Unanswered ones always go back to the queue.
    on_agent_gone: OnAgentGone | None = None
    # After a close: ask the customer to rate the conversation ([csat]), and the share of
    # closed conversations that land in the QA queue ([qa]) besides complaints and low CSAT.
    csat: bool = True
    qa_sample: Share = 0.0


def on_agent_gone(queue: QueueConfig) -> OnAgentGone:
    """The queue's on_agent_gone: as set, else "requeue" when it takes a live channel (a
    chat: LIVE_CHANNELS; any channel, when it lists none), where the customer waits for an
    answer now, and "keep" for the others (email, reviews), whose customers are better
    answered later by the agent who knows the case."""
    if queue.on_agent_gone is not None:
        return queue.on_agent_gone
    if not queue.channels or any(c in LIVE_CHANNELS for c in queue.channels):
        return "requeue"
    return "keep"


class HoursConfig(Strict):
    """A weekly schedule in a time zone, with holidays when it stays closed."""

    timezone: str = "UTC"
    weekly: dict[Weekday, list[TimeRange]] = {}
    holidays: list[date] = []


class RuleConfig(Strict):
    """A classification rule: every condition given must hold; the first rule that matches
    sets the conversation's queue, priority, required skills and complaint grade."""

    name: str
    channels: list[str] = []
    accounts: list[str] = []
    keywords: list[str] = []
    tags: list[str] = []
    languages: list[str] = []
    rating_at_most: float | None = None
    rating_at_least: float | None = None
    queue: str | None = None
    priority: Priority | None = None
    skills: dict[str, Level] | None = None
    grade: str | None = None


class OnDeadline(Strict):
    """What a complaint's missed deadline does (besides the metric and the frames to the
    agent and the leads, which every action has): raise the priority to ``priority``, move
    the conversation to ``queue``, or only tell the leads."""

    action: DeadlineAction = "notify_leads"
    priority: Priority | None = None  # raise_priority: the priority it gets
    queue: str | None = None  # move_to_queue: the queue it goes to


class GradeConfig(Strict):
    """A complaint grade (投诉分级) and what it means for priority and SLA, and its
    deadlines (超时提醒): the first response and the resolution, counted from the opening,
    each with a reminder ``remind_before_s`` ahead and ``on_deadline`` when it passes."""

    name: str
    priority: Priority
    sla_s: Seconds
    first_response_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    resolve_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    remind_before_s: Seconds = 60.0
    on_deadline: OnDeadline = msgspec.field(default_factory=OnDeadline)


class RoutingConfig(Strict):
    """The ``[routing]`` table: offers, dispatch batches, deduplication and the gateway's
    routing timers."""

    offer_timeout_s: float = 30.0
    decline_cooldown_s: Seconds = 300.0
    default_queue: str | None = None
    dispatch_batch: int = 50
    scan_limit: int = 200
    sweep_interval_s: Interval = 0.25
    dedupe_ttl_s: Seconds = 7 * 86400.0
    recent_messages: int = 20
    returning_customer_window_s: Seconds = 72 * 3600.0
    missed_offers_before_away: int = 3
    not_ready_reasons: list[str] = msgspec.field(
        default_factory=lambda: ["lunch", "training", "after_call_work"]
    )
    position_interval_s: Seconds = 2.0
    closed_retention_s: Seconds = 30 * 86400.0


class NamedError(Exception):
    """A semantic problem: the table and key it is about, and what is wrong."""

    def __init__(self, table: str, key: str, problem: str) -> None:
        super().__init__(problem)
        self.table, self.key, self.problem = table, key, problem


_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_routing_tables(
    queues: list[QueueConfig],
    rules: list[RuleConfig],
    grades: list[GradeConfig],
    hours: dict[str, HoursConfig],
) -> None:
    """Cross-references between the routing tables; raises NamedError."""
    from router.hours import check_schedule

    names: set[str] = set()
    for i, queue in enumerate(queues):
        where = f"queues[{i}]"
        if queue.name in names:
            raise NamedError(where, "name", f"duplicate queue {queue.name!r}")
        if not _NAME.fullmatch(queue.name):
            raise NamedError(where, "name", "use letters, digits, _ . -")
        names.add(queue.name)
    for i, queue in enumerate(queues):
        where = f"queues[{i}]"
        if queue.overflow is not None and queue.overflow not in names:
            raise NamedError(where, "overflow", f"no queue named {queue.overflow!r}")
        if queue.after_hours_queue is not None and queue.after_hours_queue not in names:
            raise NamedError(
                where, "after_hours_queue", f"no queue named {queue.after_hours_queue!r}"
            )
        if queue.hours is not None and queue.hours not in hours:
            raise NamedError(where, "hours", f"no [hours.{queue.hours}] table")
        if any(step.overflow for step in queue.escalation) and queue.overflow is None:
            raise NamedError(where, "overflow", "an escalation step overflows: name the queue")
        if queue.after_max_wait != "none" and queue.max_wait_s <= 0:
            raise NamedError(where, "max_wait_s", "set it for after_max_wait to apply")
        if queue.overflow == queue.name:
            raise NamedError(where, "overflow", "a queue cannot overflow to itself")
        if queue.after_hours_queue is not None and queue.hours is None:
            raise NamedError(where, "after_hours_queue", "needs hours: the queue is never closed")
        if queue.after_hours_queue == queue.name:
            raise NamedError(where, "after_hours_queue", "must be another queue")
        afters = [step.after_s for step in queue.escalation]
        if afters != sorted(afters):
            raise NamedError(where, "escalation", "steps must come in order of after_s")
        if "{position}" not in queue.position_message:
            raise NamedError(where, "position_message", "must contain {position}")
        if (
            queue.inactivity_close_s
            and queue.inactivity_warn_s
            and queue.inactivity_close_s <= queue.inactivity_warn_s
        ):
            raise NamedError(where, "inactivity_close_s", "must come after inactivity_warn_s")
    grade_names = {g.name for g in grades}
    if len(grade_names) != len(grades):
        raise NamedError("grades", "name", "grade names must be unique")
    for i, grade in enumerate(grades):
        _check_deadlines(f"grades[{i}]", grade, names)
    if len({r.name for r in rules}) != len(rules):
        raise NamedError("rules", "name", "rule names must be unique")
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if rule.queue is not None and rule.queue not in names:
            raise NamedError(where, "queue", f"no queue named {rule.queue!r}")
        if rule.grade is not None and rule.grade not in grade_names:
            raise NamedError(where, "grade", f"no grade named {rule.grade!r} in [[grades]]")
    for name, schedule in hours.items():
        problem = check_schedule(schedule)
        if problem is not None:
            raise NamedError(f"hours.{name}", problem[0], problem[1])


def _check_deadlines(where: str, grade: GradeConfig, queues: set[str]) -> None:
    on = grade.on_deadline
    if on.action == "raise_priority" and on.priority is None:
        raise NamedError(where, "on_deadline.priority", "raise_priority needs the priority")
    if on.action == "move_to_queue":
        if on.queue is None:
            raise NamedError(where, "on_deadline.queue", "move_to_queue needs the queue")
        if on.queue not in queues:
            raise NamedError(where, "on_deadline.queue", f"no queue named {on.queue!r}")
    if (
        grade.first_response_s is not None
        and grade.resolve_s is not None
        and grade.resolve_s < grade.first_response_s
    ):
        raise NamedError(where, "resolve_s", "must not come before first_response_s")
