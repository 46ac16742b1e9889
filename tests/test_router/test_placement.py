"""Placement: the rules' queue, else the queue taking the channel, else the default queue; a
closed queue's notice and opening, or its after-hours queue; the basis re-placement compares;
the facts read from an inbound message's metadata. Pure: no Redis."""

from __future__ import annotations

from datetime import UTC, datetime

from router.config import GradeConfig, HoursConfig, QueueConfig, RuleConfig
from router.placement import Placer, message_facts, queue_for_channel
from router.rules import MessageFacts

OFFICE = HoursConfig(weekly={day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")})
QUEUES = [
    QueueConfig(name="chat", channels=["webchat"], priority=1),
    QueueConfig(name="mail", channels=["email"], priority=2),
    QueueConfig(name="office", hours="office", closed_message="Closed, back at nine."),
    QueueConfig(name="desk", hours="office", after_hours_queue="chat"),
]
RULES = [
    RuleConfig(name="complaints", keywords=["投诉"], queue="office", grade="A"),
    RuleConfig(name="desk", keywords=["desk"], queue="desk"),
]
GRADES = [GradeConfig(name="A", priority=9, sla_s=600.0)]


def ms(*when: int) -> int:
    return int(datetime(*when, tzinfo=UTC).timestamp() * 1000)


OPEN = ms(2025, 6, 2, 10)  # a Monday morning
CLOSED = ms(2025, 6, 2, 20)  # that evening


def placer(default_queue: str | None = "mail") -> Placer:
    return Placer(QUEUES, RULES, GRADES, {"office": OFFICE}, default_queue)


def facts(text: str = "hello", channel: str = "webchat") -> MessageFacts:
    return MessageFacts.of(channel, "main", text)


def test_without_a_rule_the_channel_picks_the_queue_then_the_default():
    assert placer().place(facts(), OPEN).placement.queue == "chat"
    assert placer().place(facts(channel="email"), OPEN).placement.queue == "mail"
    assert placer().place(facts(channel="wechat"), OPEN).placement.queue == "mail"
    assert placer(None).place(facts(channel="wechat"), OPEN).placement.queue == "chat"
    assert queue_for_channel("email", QUEUES, "chat") == "mail"


def test_a_rules_queue_priority_grade_and_sla_win():
    placed = placer().place(facts("我要投诉"), OPEN)
    assert placed.closed_notice is None
    p = placed.placement
    assert (p.queue, p.priority, p.grade, p.sla_s) == ("office", 9, "A", 600.0)
    assert p.waits_from_ms is None
    plain = placer().place(facts(), OPEN).placement
    assert (plain.priority, plain.grade, plain.sla_s) == (1, None, None)  # the queue's own


def test_a_closed_queue_sends_its_notice_and_waits_from_its_opening():
    placed = placer().place(facts("我要投诉"), CLOSED)
    assert placed.placement.queue == "office"
    assert placed.closed_notice == "Closed, back at nine."
    assert placed.placement.waits_from_ms == ms(2025, 6, 3, 9)


def test_a_closed_queue_with_an_after_hours_queue_hands_over_on_the_same_basis():
    by_day = placer().place(facts("desk please"), OPEN)
    at_night = placer().place(facts("desk please"), CLOSED)
    assert (by_day.placement.queue, at_night.placement.queue) == ("desk", "chat")
    assert at_night.closed_notice is None and at_night.placement.waits_from_ms is None
    assert at_night.placement.priority == 1  # the after-hours queue's
    assert by_day.placement.basis == at_night.placement.basis
    assert by_day.placement.basis != placer().place(facts(), OPEN).placement.basis


def test_open_queues_follow_the_hours():
    assert placer().open_queues(OPEN) == ["chat", "mail", "office", "desk"]
    assert placer().open_queues(CLOSED) == ["chat", "mail"]


def test_message_facts_read_tags_and_rating_from_metadata():
    got = message_facts("reviews", "shop", "ok", {"tags": " vip, ,new ", "rating": "2.5"})
    assert (got.tags, got.rating) == (frozenset({"vip", "new"}), 2.5)
    assert message_facts("reviews", "shop", "ok", {"rating": "five"}).rating is None
    assert message_facts("webchat", "main", "Where is my parcel?", {}).language == "en"
