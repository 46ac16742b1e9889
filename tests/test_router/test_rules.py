"""Classification rules: order, every condition kind, grades, language detection. Pure: no
Redis. Rules are router.config's Structs, as the gateway decodes them."""

from __future__ import annotations

import msgspec
import pytest

from router.config import GradeConfig, RuleConfig
from router.rules import Classifier, Decision, MessageFacts, detect_language

GRADES = [
    GradeConfig(name="A", priority=9, sla_s=600.0),
    GradeConfig(name="B", priority=6, sla_s=3600.0),
    GradeConfig(name="C", priority=3, sla_s=86400.0),
]


def facts(
    text: str = "hello",
    *,
    channel: str = "webchat",
    account: str = "main",
    tags: tuple[str, ...] = (),
    rating: float | None = None,
    language: str | None = None,
) -> MessageFacts:
    return MessageFacts.of(channel, account, text, tags=tags, rating=rating, language=language)


def classify(rules: list[RuleConfig], message: MessageFacts) -> Decision:
    return Classifier(rules, GRADES).classify(message)


# Order and the default.


def test_the_first_matching_rule_wins_over_later_ones():
    rules = [
        RuleConfig(name="complaints", keywords=["投诉"], queue="complaints"),
        RuleConfig(name="wechat", channels=["wechat"], queue="wechat"),
        RuleConfig(name="default", queue="general"),
    ]
    assert classify(rules, facts("我要投诉", channel="wechat")).rule == "complaints"
    assert classify(rules, facts("你好", channel="wechat")).rule == "wechat"
    assert classify(rules, facts("你好", channel="email")).rule == "default"


def test_order_is_the_table_order_not_the_most_specific_rule():
    rules = [
        RuleConfig(name="broad", channels=["wechat"], queue="wechat"),
        RuleConfig(name="narrow", channels=["wechat"], keywords=["退款"], queue="refunds"),
    ]
    assert classify(rules, facts("退款", channel="wechat")).queue == "wechat"


def test_no_matching_rule_gives_an_all_none_decision():
    rules = [RuleConfig(name="wechat", channels=["wechat"], queue="wechat")]
    decision = classify(rules, facts(channel="email"))
    assert decision == Decision()
    assert msgspec.structs.asdict(decision) == dict.fromkeys(
        ("queue", "priority", "skills", "grade", "sla_s", "rule", "grade_config")
    )


def test_no_rules_at_all_is_fine():
    assert Classifier([], []).classify(facts()) == Decision()


def test_a_rule_sets_queue_priority_and_skills():
    rules = [RuleConfig(name="vip", tags=["VIP"], queue="vip", priority=7, skills={"billing": 3})]
    decision = classify(rules, facts(tags=("vip",)))
    assert decision == Decision(
        queue="vip", priority=7, skills={"billing": 3}, grade=None, sla_s=None, rule="vip"
    )


def test_the_decision_is_a_copy_the_caller_may_change():
    rules = [RuleConfig(name="r", queue="q", skills={"zh": 2})]
    classifier = Classifier(rules, GRADES)
    first = classifier.classify(facts())
    assert first.skills is not None
    first.skills["zh"] = 5
    first.queue = "other"
    again = classifier.classify(facts())
    assert again.skills == {"zh": 2} and again.queue == "q"


# Each condition kind.


def test_channels_and_accounts():
    rules = [
        RuleConfig(name="wx-shop", channels=["wechat"], accounts=["shop"], queue="shop"),
        RuleConfig(name="any-shop", accounts=["shop"], queue="shop2"),
    ]
    assert classify(rules, facts(channel="wechat", account="shop")).rule == "wx-shop"
    assert classify(rules, facts(channel="email", account="shop")).rule == "any-shop"
    assert classify(rules, facts(channel="wechat", account="brand")).rule is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("我要投诉你们的快递", "complaint"),
        ("申请退款", "refund"),
        ("给你们差评！", "bad-review"),
        ("I want to file a complaint", "complaint"),
        ("Complaint: parcel lost", "complaint"),
        ("please refund me", "refund"),
        ("REFUND NOW", "refund"),
        ("Refunds take too long", "refund"),  # a keyword may start a longer word
        ("this is non-refundable?", "refund"),
        ("ＲＥＦＵＮＤ", "refund"),  # full-width, as Chinese input methods type it
        ("我要refund", "refund"),  # Chinese right before an English keyword
        ("where is my parcel", None),
    ],
)
def test_keywords_in_chinese_and_english(text: str, rule: str | None):
    rules = [
        RuleConfig(name="complaint", keywords=["投诉", "complaint"], queue="complaints"),
        RuleConfig(name="refund", keywords=["退款", "refund"], queue="refunds"),
        RuleConfig(name="bad-review", keywords=["差评"], queue="reviews"),
    ]
    assert classify(rules, facts(text)).rule == rule


def test_a_latin_keyword_does_not_match_inside_a_word():
    rules = [RuleConfig(name="legal", keywords=["sue", "late"], queue="legal")]
    assert classify(rules, facts("I have an issue with the template")).rule is None
    assert classify(rules, facts("I will sue you, the parcel is late")).rule == "legal"
    assert classify(rules, facts("Sue-happy")).rule == "legal"


def test_a_chinese_keyword_matches_anywhere_in_the_text():
    rules = [RuleConfig(name="complaint", keywords=["投诉"], queue="complaints")]
    assert classify(rules, facts("你们客服太差了我要去12315投诉")).rule == "complaint"


def test_tags_match_any_of_the_rules_tags_case_insensitively():
    rules = [RuleConfig(name="vip", tags=["VIP", "svip"], queue="vip")]
    assert classify(rules, facts(tags=("vip",))).rule == "vip"
    assert classify(rules, facts(tags=("new", "SVIP"))).rule == "vip"
    assert classify(rules, facts(tags=("new",))).rule is None
    assert classify(rules, facts()).rule is None


def test_rating_at_most_catches_one_star_reviews():
    rules = [RuleConfig(name="low", channels=["reviews"], rating_at_most=2, queue="complaints")]
    assert classify(rules, facts("差", channel="reviews", rating=1)).rule == "low"
    assert classify(rules, facts("一般", channel="reviews", rating=2)).rule == "low"
    assert classify(rules, facts("好", channel="reviews", rating=2.5)).rule is None


def test_rating_at_least_and_a_band():
    rules = [
        RuleConfig(name="happy", rating_at_least=4.5, queue="thanks"),
        RuleConfig(name="middling", rating_at_least=2.5, rating_at_most=3.5, queue="follow-up"),
    ]
    assert classify(rules, facts(rating=5)).rule == "happy"
    assert classify(rules, facts(rating=3)).rule == "middling"
    assert classify(rules, facts(rating=4)).rule is None


def test_a_rating_condition_never_matches_a_message_without_a_rating():
    rules = [
        RuleConfig(name="low", rating_at_most=2, queue="complaints"),
        RuleConfig(name="rest", queue="general"),
    ]
    assert classify(rules, facts("我要投诉")).rule == "rest"


def test_languages_from_detection():
    rules = [
        RuleConfig(name="english", languages=["en"], queue="en", skills={"english": 2}),
        RuleConfig(name="chinese", languages=["zh"], queue="zh"),
    ]
    assert classify(rules, facts("Where is my parcel?")).rule == "english"
    assert classify(rules, facts("我的包裹在哪里？")).rule == "chinese"
    assert classify(rules, facts("12345")).rule is None  # undecidable: no language


def test_a_language_the_channel_knows_beats_detection_and_regional_tags_match():
    rules = [RuleConfig(name="chinese", languages=["ZH"], queue="zh")]
    assert classify(rules, facts("ok", language="zh-CN")).rule == "chinese"
    assert classify(rules, facts("好的", language="en")).rule is None


def test_every_condition_of_a_rule_must_hold():
    rules = [
        RuleConfig(
            name="vip-refund-wechat",
            channels=["wechat"],
            keywords=["退款"],
            tags=["VIP"],
            languages=["zh"],
            queue="vip",
        )
    ]

    def check(text: str, channel: str = "wechat", tags: tuple[str, ...] = ("VIP",), **kw):
        return classify(rules, facts(text, channel=channel, tags=tags, **kw)).rule

    assert check("我要退款") == "vip-refund-wechat"
    assert check("我要退款", channel="email") is None
    assert check("我要退款", tags=()) is None
    assert check("你好") is None
    assert check("退款", language="en") is None


# Grades.


def test_a_grade_sets_priority_and_sla():
    rules = [RuleConfig(name="one-star", rating_at_most=1, queue="complaints", grade="A")]
    decision = classify(rules, facts("垃圾", channel="reviews", rating=1))
    assert (decision.grade, decision.priority, decision.sla_s) == ("A", 9, 600.0)


def test_an_explicit_priority_beats_the_grades_priority_but_keeps_its_sla():
    rules = [RuleConfig(name="complaint", keywords=["投诉"], priority=4, grade="B")]
    decision = classify(rules, facts("投诉"))
    assert (decision.grade, decision.priority, decision.sla_s) == ("B", 4, 3600.0)


def test_an_explicit_priority_of_zero_still_beats_the_grade():
    rules = [RuleConfig(name="r", priority=0, grade="A")]
    assert classify(rules, facts()).priority == 0


def test_a_rule_naming_an_unknown_grade_is_refused():
    with pytest.raises(ValueError, match="no grade named 'Z'"):
        Classifier([RuleConfig(name="r", grade="Z")], GRADES)


def test_a_rules_grade_is_looked_up_by_name():
    grade = GradeConfig(name="urgent", priority=8, sla_s=120.0)
    rule = RuleConfig(name="r", keywords=["急"], queue="q", grade="urgent")
    decision = Classifier([rule], [*GRADES, grade]).classify(facts("很急"))
    assert (decision.queue, decision.priority, decision.sla_s) == ("q", 8, 120.0)


# Language detection.


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我要投诉你们的快递", "zh"),
        ("我的订单 refund 还没到", "zh"),
        ("訂單還沒到", "zh"),  # traditional characters
        ("Where is my order? It has been two weeks.", "en"),
        ("Hi, I am 王伟 and my order has not arrived yet", "en"),
        ("ＲＥＦＵＮＤ please", "en"),
        ("注文がまだ届きません", "ja"),
        ("カスタマーサポート", "ja"),
        ("주문이 도착하지 않았습니다", "ko"),
        ("", None),
        ("   ", None),
        ("12345 !!! 😡", None),
        ("Привет, где мой заказ?", None),
        ("Je voudrais être remboursé, le colis est arrivé cassé", None),
    ],
)
def test_detect_language(text: str, language: str | None):
    assert detect_language(text) == language


def test_message_facts_of_detects_the_language_and_freezes_tags():
    message = MessageFacts.of("wechat", "shop", "退款", tags=["VIP", "VIP"], rating=None)
    assert message.language == "zh"
    assert message.tags == frozenset({"VIP"})
    assert MessageFacts.of("email", "a", "退款", language="en").language == "en"


def test_message_facts_round_trip_through_msgspec():
    message = MessageFacts.of("reviews", "store", "Terrible", tags=("vip",), rating=1.0)
    encoded = msgspec.msgpack.encode(message)
    assert msgspec.msgpack.decode(encoded, type=MessageFacts) == message
