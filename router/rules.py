"""Classification: which queue, priority, skills and complaint grade a new message gets.

The ``[[rules]]`` table is read in order and the first rule whose every condition holds wins;
a condition left empty does not constrain, so a last rule with no conditions is the default.
A rule's grade (投诉分级) maps through ``[[grades]]`` to a priority and an SLA: the grade's
priority applies when the rule gives none, and the grade's ``sla_s`` is the decision's SLA.

Matching, and why:

- Text is compared after NFKC normalisation and case folding, so ``REFUND``, ``Refund`` and the
  full-width ``ＲＥＦＵＮＤ`` that Chinese input methods produce all match ``refund``.
- Chinese has no spaces between words, so a keyword in CJK script matches as a plain substring
  (``投诉`` in ``我要投诉你们``). A keyword that starts with a Latin letter or digit must start a
  word: ``refund`` matches ``refunds``, ``non-refundable`` and ``我要refund``, but ``sue``
  does not match ``issue`` and ``late`` does not match ``template``, misroutings that plain
  substrings would make all day long.
- Tags and languages compare case-insensitively; a rule's language ``zh`` also matches a
  message whose language is a regional tag such as ``zh-CN``.
- A rule with a rating condition never matches a message without a rating.

The module is pure (no I/O): rules and grades are router.config's RuleConfig and GradeConfig.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import msgspec

from router.config import GradeConfig, RuleConfig

DETECT_SAMPLE = 2000  # characters; enough to tell a language, cheap for long emails


def detect_language(text: str) -> str | None:
    """A rough guess at the language of a customer's message, good enough for routing.

    Counts scripts over the first DETECT_SAMPLE characters: kana make it ``ja`` (when they are
    at least a tenth of the CJK characters, so that a lone の in Chinese chat slang does not),
    Hangul ``ko``, Han ideographs ``zh`` when they outweigh Latin letters (one ideograph counts
    as three letters: a Chinese word is one or two characters, an English word about five).
    Latin text is ``en`` when almost all of its letters are plain ASCII; accented Latin text
    (French, German, Vietnamese...) and other scripts give None, as do empty text, digits and
    emoji: a wrong guess would route worse than no guess."""
    sample = unicodedata.normalize("NFKC", text[:DETECT_SAMPLE])
    han = kana = hangul = ascii_letters = other_latin = other = 0
    for char in sample:
        code = ord(char)
        if code < 0x80:
            if char.isalpha():
                ascii_letters += 1
        elif 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF:
            kana += 1
        elif (
            0x4E00 <= code <= 0x9FFF
            or 0x3400 <= code <= 0x4DBF
            or 0xF900 <= code <= 0xFAFF
            or 0x20000 <= code <= 0x3FFFF
        ):
            han += 1
        elif 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif char.isalpha():
            if code <= 0x024F or 0x1E00 <= code <= 0x1EFF:
                other_latin += 1
            else:
                other += 1
    cjk = han + kana
    if kana and kana * 10 >= cjk:
        return "ja"
    latin = ascii_letters + other_latin
    if hangul and hangul >= han and hangul * 3 > latin:
        return "ko"
    if han and han * 3 > latin and han * 3 > other:
        return "zh"
    if ascii_letters >= 2 and latin > other and other_latin * 20 <= latin:
        return "en"
    return None


class MessageFacts(msgspec.Struct, kw_only=True):
    """What classification looks at in a new message: where it came from and what it says."""

    channel: str
    account: str
    text: str
    tags: frozenset[str] = frozenset()
    rating: float | None = None
    language: str | None = None

    @classmethod
    def of(
        cls,
        channel: str,
        account: str,
        text: str,
        tags: Iterable[str] = (),
        rating: float | None = None,
        language: str | None = None,
    ) -> MessageFacts:
        """Facts with the language detected from the text unless the channel knows it."""
        if language is None:
            language = detect_language(text)
        return cls(
            channel=channel,
            account=account,
            text=text,
            tags=frozenset(tags),
            rating=rating,
            language=language,
        )


class Decision(msgspec.Struct, kw_only=True):
    """The outcome of classification; every field None when no rule matched, and then the
    caller falls back to channel-based queue choice and the queue's own settings."""

    queue: str | None = None
    priority: int | None = None
    skills: dict[str, int] | None = None
    grade: str | None = None
    sla_s: float | None = None
    rule: str | None = None  # the matching rule's name, for logs and metrics
    grade_config: GradeConfig | None = None  # the grade's table, for its deadlines


def normalise(text: str) -> str:
    """The form in which texts and keywords are compared: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


# A Latin keyword must not continue a word: no Latin letter or digit right before it.
_WORD_START = r"(?<![0-9a-z\u00b5\u00c0-\u024f\u1e00-\u1eff])"


def _keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    parts: list[str] = []
    for keyword in keywords:
        word = normalise(keyword).strip()
        if not word:
            continue
        first = word[0]
        starts_latin = (first.isascii() and first.isalnum()) or "\u00c0" <= first <= "\u024f"
        parts.append((_WORD_START if starts_latin else "") + re.escape(word))
    if not parts:
        return None
    return re.compile("|".join(parts))


class _Rule:
    """A rule with its conditions prepared for repeated matching."""

    __slots__ = (
        "accounts",
        "channels",
        "decision",
        "keywords",
        "languages",
        "rating_at_least",
        "rating_at_most",
        "tags",
    )

    def __init__(self, rule: RuleConfig, decision: Decision) -> None:
        self.channels = frozenset(rule.channels or ())
        self.accounts = frozenset(rule.accounts or ())
        self.keywords = _keyword_pattern(rule.keywords or ())
        self.tags = frozenset(t.casefold() for t in rule.tags or ())
        self.languages = frozenset(lang.casefold() for lang in rule.languages or ())
        self.rating_at_most = rule.rating_at_most
        self.rating_at_least = rule.rating_at_least
        self.decision = decision


class Classifier:
    """The ``[[rules]]`` and ``[[grades]]`` tables, compiled once, applied to every new
    conversation's first message."""

    def __init__(self, rules: Sequence[RuleConfig], grades: Sequence[GradeConfig] = ()) -> None:
        """Compile the rules; ValueError when a rule names a grade that ``grades`` lacks
        (the configuration check reports that earlier, with the table and key)."""
        by_name = {grade.name: grade for grade in grades}
        self._rules: list[_Rule] = []
        for rule in rules:
            grade = None
            if rule.grade is not None:
                grade = by_name.get(rule.grade)
                if grade is None:
                    raise ValueError(f"rule {rule.name!r}: no grade named {rule.grade!r}")
            priority = rule.priority
            if priority is None and grade is not None:
                priority = grade.priority
            decision = Decision(
                queue=rule.queue,
                priority=priority,
                skills=dict(rule.skills) if rule.skills is not None else None,
                grade=rule.grade,
                sla_s=grade.sla_s if grade is not None else None,
                rule=rule.name,
                grade_config=grade,
            )
            self._rules.append(_Rule(rule, decision))

    def classify(self, facts: MessageFacts) -> Decision:
        """The decision of the first rule that matches ``facts``; all None when none does.
        The returned Decision is a fresh copy: callers may change it."""
        text: str | None = None
        tags: frozenset[str] | None = None
        language = facts.language.casefold() if facts.language else None
        for rule in self._rules:
            if rule.channels and facts.channel not in rule.channels:
                continue
            if rule.accounts and facts.account not in rule.accounts:
                continue
            if rule.languages and not _language_in(language, rule.languages):
                continue
            if rule.rating_at_most is not None or rule.rating_at_least is not None:
                rating = facts.rating
                if rating is None:
                    continue
                if rule.rating_at_most is not None and rating > rule.rating_at_most:
                    continue
                if rule.rating_at_least is not None and rating < rule.rating_at_least:
                    continue
            if rule.tags:
                if tags is None:
                    tags = frozenset(t.casefold() for t in facts.tags)
                if rule.tags.isdisjoint(tags):
                    continue
            if rule.keywords is not None:
                if text is None:
                    text = normalise(facts.text)
                if rule.keywords.search(text) is None:
                    continue
            return _copy(rule.decision)
        return Decision()


def _language_in(language: str | None, wanted: frozenset[str]) -> bool:
    if language is None:
        return False
    return language in wanted or language.split("-", 1)[0] in wanted


def _copy(decision: Decision) -> Decision:
    return Decision(
        queue=decision.queue,
        priority=decision.priority,
        skills=dict(decision.skills) if decision.skills is not None else None,
        grade=decision.grade,
        sla_s=decision.sla_s,
        rule=decision.rule,
        grade_config=decision.grade_config,
    )
