"""Where a new conversation goes: classification rules, then the queue's business hours.
Also which queues are open now, for the router."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from adapters.contract import Inbound
from gateway.config import Config
from router.classify import queue_for_channel
from router.hours import BusinessHours
from router.results import Placement
from router.rules import Classifier, Decision, MessageFacts


class Placed(msgspec.Struct, frozen=True):
    placement: Placement
    closed_notice: str | None  # the auto-reply for a queue closed now, if any


def _tags(inbound: Inbound) -> tuple[str, ...]:
    raw = inbound.metadata.get("tags", "")
    return tuple(t.strip() for t in raw.split(",") if t.strip())


def _rating(inbound: Inbound) -> float | None:
    try:
        return float(inbound.metadata["rating"])
    except (KeyError, ValueError):
        return None


def _basis(queue: str, decision: Decision) -> str:
    """What classification decided, before business hours: re-placing a waiting conversation
    on the same basis changes nothing, so an edit that classifies the same (a typo fixed)
    neither undoes its escalation steps nor moves it to an after-hours queue."""
    facts = [queue, decision.priority, decision.skills, decision.grade, decision.sla_s]
    return msgspec.json.encode(facts).decode()


class Placer:
    def __init__(self, config: Config) -> None:
        self.queues = {q.name: q for q in config.queues}
        self.default_queue = config.routing.default_queue or config.queues[0].name
        self.classifier = Classifier(config.core.rules, config.core.grades)
        self.hours = {name: BusinessHours(schedule) for name, schedule in config.core.hours.items()}
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

    def place(self, inbound: Inbound, now_ms: int) -> Placed:
        facts = MessageFacts.of(
            inbound.channel,
            inbound.account,
            inbound.text,
            tags=_tags(inbound),
            rating=_rating(inbound),
        )
        decision = self.classifier.classify(facts)
        name = decision.queue or queue_for_channel(
            inbound.channel, list(self.queues.values()), self.default_queue
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
        )
        return Placed(placement=placement, closed_notice=notice)
