"""A graded complaint's deadlines (超时提醒): the first response and the resolution, each
counted from the conversation's opening, with a reminder ahead of it.

They are conversation timers like the others (the tenant's timers zset, four kinds below), set
when the conversation opens, so that any process's sweep fires each once (timers.lua claims a
timer by removing it) and a process killed in between loses none. What the grade's
``on_deadline`` does is copied into the route (``dl``) with the due times, because the scripts
read no configuration: the script that fires the deadline acts on it alone, in one call, and
the route then says what happened (reply.lua marks the first response, timers.lua a reminder
sent and a deadline missed). Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.model import ConversationState, Deadline, DeadlineState
from router.config import GradeConfig
from router.route import RouteDeadlines

# Timer kinds, "kind|conversation" in the timers zset; _common.lua's TIMER_KINDS lists them
# too, so that a close clears them.
FIRST_REMIND, FIRST_DUE = "first_remind", "first_due"
RESOLVE_REMIND, RESOLVE_DUE = "resolve_remind", "resolve_due"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def route_deadlines(grade: GradeConfig | None, opened_ms: int) -> RouteDeadlines | None:
    """The deadlines a conversation of this grade opens with (or gets when an edit makes it
    a complaint: deadlines.lua), from ``opened_ms``; None when the grade has none."""
    if grade is None or (grade.first_response_s is None and grade.resolve_s is None):
        return None
    on = grade.on_deadline
    first, resolve = grade.first_response_s, grade.resolve_s
    return RouteDeadlines(
        action=on.action,
        priority=on.priority if on.action == "raise_priority" else None,
        queue=on.queue if on.action == "move_to_queue" else None,
        remind_before_ms=_ms(grade.remind_before_s),
        from_ms=opened_ms,
        first_due_ms=None if first is None else opened_ms + _ms(first),
        resolve_due_ms=None if resolve is None else opened_ms + _ms(resolve),
    )


def remind_at_ms(due_ms: int, deadlines: RouteDeadlines) -> int | None:
    """When a deadline's reminder goes out: remind_before_s ahead; none when that is not
    after the start (a reminder as the complaint arrives tells nobody anything)."""
    at = due_ms - deadlines.remind_before_ms
    return at if deadlines.remind_before_ms > 0 and at > deadlines.from_ms else None


def deadline_timers(deadlines: RouteDeadlines | None) -> list[str | int]:
    """The timers for ingest: kind, due ms, ..."""
    if deadlines is None:
        return []
    timers: list[str | int] = []
    for due, remind, kind in (
        (deadlines.first_due_ms, FIRST_REMIND, FIRST_DUE),
        (deadlines.resolve_due_ms, RESOLVE_REMIND, RESOLVE_DUE),
    ):
        if due is None:
            continue
        at = remind_at_ms(due, deadlines)
        if at is not None:
            timers += [remind, at]
        timers += [kind, due]
    return timers


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def deadline_views(deadlines: RouteDeadlines | None, state: ConversationState) -> list[Deadline]:
    """The deadlines as agents and the admin API see them, with what became of each."""
    if deadlines is None:
        return []
    views = []
    first, resolve = deadlines.first_due_ms, deadlines.resolve_due_ms
    closed = state == "closed"
    if first is not None:
        # Met by the first reply; a close before any reply ends it unmet ("closed").
        met = deadlines.first_replied_ms is not None
        first_state = _state(
            deadlines.first_missed_ms, met, closed, "closed", deadlines.first_reminded_ms
        )
        views.append(_view("first_response", first, deadlines, first_state))
    if resolve is not None:
        # Resolving is closing: a close before the deadline meets it.
        resolve_state = _state(
            deadlines.resolve_missed_ms, False, closed, "met", deadlines.resolve_reminded_ms
        )
        views.append(_view("resolve", resolve, deadlines, resolve_state))
    return views


def _state(
    missed_ms: int | None,
    met: bool,
    closed: bool,
    closed_as: DeadlineState,
    reminded_ms: int | None,
) -> DeadlineState:
    """One deadline's state, the first that applies: missed, met, ended by the close, reminded."""
    if missed_ms is not None:
        return "missed"
    if met:
        return "met"
    if closed:
        return closed_as
    return "reminded" if reminded_ms is not None else "pending"


def _view(kind: str, due: int, deadlines: RouteDeadlines, state: DeadlineState) -> Deadline:
    remind = remind_at_ms(due, deadlines)
    return Deadline(
        kind="first_response" if kind == "first_response" else "resolve",
        due_at=_at(due),
        remind_at=None if remind is None else _at(remind),
        state=state,
    )
