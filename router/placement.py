"""Where a new conversation goes: classification rules, then the queue that takes the
message's channel, then the queue's business hours. Also which queues are open now, for the
router. Pure (no I/O): the routing tables arrive as router.config's Structs and the message as
the facts classification reads, so the gateway and tests place conversations the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from router.config import GradeConfig, HoursConfig, QueueConfig, RuleConfig
from router.hours import BusinessHours
from router.results import Placement
from router.rules import Classifier, Decision, MessageFacts


class Placed(msgspec.Struct, frozen=True):
    placement: Placement
    closed_notice: str | None  # the auto-reply for a queue closed now, if any


def message_facts(
    channel: str, account: str, text: str, metadata: Mapping[str, str]
) -> MessageFacts:
    """The facts of an inbound message, with the tags (comma-separated) and the rating that
    channels put in its metadata."""
    raw_tags = metadata.get("tags", "")
    tags = tuple(t.strip() for t in raw_tags.split(",") if t.strip())
    return MessageFacts.of(channel, account, text, tags=tags, rating=_rating(metadata))


def _rating(metadata: Mapping[str, str]) -> float | None:
    try:
        return float(metadata["rating"])
    except (KeyError, ValueError):
        return None


def queue_for_channel(channel: str, queues: Sequence[QueueConfig], default: str) -> str:
    """The queue a conversation joins when no classification rule names one: the first queue
    that takes the message's channel, else the default queue."""
    for queue in queues:
        if channel in queue.channels:
            return queue.name
    return default


def _basis(queue: str, decision: Decision) -> str:
    """What classification decided, before business hours: re-placing a waiting conversation
    on the same basis changes nothing, so an edit that classifies the same (a typo fixed)
    neither undoes its escalation steps nor moves it to an after-hours queue."""
    facts = [queue, decision.priority, decision.skills, decision.grade, decision.sla_s]
    return msgspec.json.encode(facts).decode()


class Placer:
    def __init__(
        self,
        queues: Sequence[QueueConfig],
        rules: Sequence[RuleConfig] = (),
        grades: Sequence[GradeConfig] = (),
        hours: Mapping[str, HoursConfig] | None = None,
        default_queue: str | None = None,
    ) -> None:
        """``default_queue`` takes a message no rule and no queue's channels claim; the first
        queue when None."""
        self.queues = {q.name: q for q in queues}
        self.default_queue = default_queue or queues[0].name
        self.classifier = Classifier(rules, grades)
        self.hours = {name: BusinessHours(schedule) for name, schedule in (hours or {}).items()}
        self._open_cache: tuple[int, list[str]] = (-1, [])

    def is_open(self, queue: str, at: datetime) -> bool:
        schedule = self.queues[queue].hours
        return schedule is None or self.hours[schedule].is_open(at)

    def _opening_ms(self, queue: str, at: datetime) -> int | None:
        schedule = self.queues[queue].hours
        opening = self.hours[schedule].next_opening(at) if schedule else None
        return int(opening.timestamp() * 1000) if opening else None

    def open_queues(self, now_ms: int) -> list[str]:
        """Queues whose conversations may be routed now; recomputed once a second."""
        second = now_ms // 1000
        if self._open_cache[0] != second:
            at = datetime.fromtimestamp(second, UTC)
            self._open_cache = (second, [q for q in self.queues if self.is_open(q, at)])
        return self._open_cache[1]

    def place(self, facts: MessageFacts, now_ms: int) -> Placed:
        decision = self.classifier.classify(facts)
        name = decision.queue or queue_for_channel(
            facts.channel, list(self.queues.values()), self.default_queue
        )
        queue = self.queues[name]
        basis = _basis(name, decision)
        notice = None
        waits_from_ms = None
        at = datetime.fromtimestamp(now_ms / 1000, UTC)
        if not self.is_open(name, at):
            if queue.after_hours_queue is not None:
                name, queue = queue.after_hours_queue, self.queues[queue.after_hours_queue]
            else:
                notice = queue.closed_message
                waits_from_ms = self._opening_ms(name, at)
        placement = Placement(
            queue=name,
            priority=decision.priority if decision.priority is not None else queue.priority,
            skills=decision.skills,
            grade=decision.grade,
            sla_s=decision.sla_s,
            waits_from_ms=waits_from_ms,
            basis=basis,
            grade_config=decision.grade_config,
        )
        return Placed(placement=placement, closed_notice=notice)
