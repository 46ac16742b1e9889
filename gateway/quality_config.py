"""The ``[csat]`` and ``[qa]`` tables: asking customers to rate a closed conversation
(满意度) and the quality inspection of a share of closed conversations (质检) against a
scorecard. Kept apart from gateway/config.py, which only includes them, because they are one
feature with its own checks."""

from __future__ import annotations

from typing import Annotated

import msgspec

from gateway.config_errors import ConfigError, entry

# The one scale customers rate on: 1 (very unsatisfied) to 5 (very satisfied).
CSAT_SCALE = 5
# A scorecard item's score runs from 0 to this; the QA score is the items' weighted mean.
QA_ITEM_MAX = 100


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CsatConfig(Strict):
    """Whether and how long a customer is asked to rate; each queue may opt out
    (``csat = false`` in ``[[queues]]``)."""

    enabled: bool = True
    window_s: float = 86400.0
    # On channels without buttons (WeChat, email): the question, and the answer to a rating.
    message: str = (
        "How satisfied are you with this conversation? Reply with one digit from "
        "1 (very unsatisfied) to 5 (very satisfied)."
    )
    thanks_message: str = "Thank you for your rating."
    max_comment_chars: int = 1000


class ScorecardItem(Strict):
    name: str
    weight: float = 1.0
    description: str | None = None


def default_scorecard() -> list[ScorecardItem]:
    return [
        ScorecardItem(name="greeting", description="greets and names themself"),
        ScorecardItem(name="accuracy", weight=2.0, description="the answer is right"),
        ScorecardItem(name="resolution", weight=2.0, description="the problem is solved"),
        ScorecardItem(name="tone", description="polite and clear"),
    ]


class QaConfig(Strict):
    """Which closed conversations land in the QA queue beside each queue's ``qa_sample``
    share, and the scorecard a lead scores them against."""

    seed: str = ""
    low_csat_at_most: Annotated[int, msgspec.Meta(ge=0, le=CSAT_SCALE)] = 2
    complaints: bool = True
    scorecard: list[ScorecardItem] = msgspec.field(default_factory=default_scorecard)


def check_quality(csat: CsatConfig, qa: QaConfig, file: str) -> None:
    if csat.window_s <= 0:
        raise ConfigError(file, "csat", "window_s", "must be greater than 0")
    if not csat.message.strip():
        raise ConfigError(file, "csat", "message", "cannot be empty")
    if not 0 <= csat.max_comment_chars <= 10000:
        raise ConfigError(file, "csat", "max_comment_chars", "runs from 0 to 10000")
    if not qa.scorecard:
        raise ConfigError(file, "qa", "scorecard", "needs at least one item")
    seen: set[str] = set()
    for i, item in enumerate(qa.scorecard):
        where = entry("qa.scorecard", i, item.name.strip())
        if not item.name.strip() or len(item.name) > 100:
            raise ConfigError(file, where, "name", "1 to 100 characters")
        if item.name in seen:
            raise ConfigError(file, where, "name", f"item {item.name!r} is listed twice")
        seen.add(item.name)
        if not 0 < item.weight <= 1000:
            raise ConfigError(file, where, "weight", "must be greater than 0 (and at most 1000)")
