"""``[conversations]``, ``[[canned_replies]]`` and ``[history]``: what agents may give as a
close reason, the replies they may insert, and how kept conversations are read back. One
module because all three are about conversations once routed, not about routing them."""

from __future__ import annotations

from gateway.agents.protocol import PLACEHOLDERS, placeholders_in
from gateway.config_errors import ConfigError, duplicate, entry, no_queue
from gateway.settings.agents import DEFAULT_UNNAMED_AGENT, MAX_SHOWN_NAME, one_line
from gateway.settings.strict import Strict

# Close-reason labels of the closed-conversations metric besides the configured reasons.
CLOSE_REASON_LABELS = ("none", "other")
MAX_CLOSE_REASON = 200


class ConversationsConfig(Strict):
    """The ``[conversations]`` table: what agents may give as a close reason, and how long a
    customer's earlier conversations are kept for the agents who serve them next."""

    close_reasons: list[str] = []
    history_days: float = 90.0
    history_limit: int = 20
    # What customers see as the name of an agent configured without name or shown_as.
    unnamed_agent: str = DEFAULT_UNNAMED_AGENT


class CannedReplyConfig(Strict):
    """A ``[[canned_replies]]`` entry; ``queues`` empty: offered in every queue."""

    id: str
    text: str
    title: str | None = None
    queues: list[str] = []


class HistoryConfig(Strict):
    """The ``[history]`` table: the admin API's list and search of kept conversations
    (how long they are kept is ``[routing] closed_retention_s``)."""

    # The most conversations one list request reads; past it the answer has a cursor.
    max_scan: int = 5000


def check_conversations(conversations: ConversationsConfig, file: str) -> None:
    if not one_line(conversations.unnamed_agent):
        problem = f"1 to {MAX_SHOWN_NAME} characters on one line (it is shown to customers)"
        raise ConfigError(file, "conversations", "unnamed_agent", problem)
    reasons = conversations.close_reasons
    for reason in reasons:
        if not reason.strip() or len(reason) > MAX_CLOSE_REASON:
            problem = f"a close reason is 1 to {MAX_CLOSE_REASON} characters"
            raise ConfigError(file, "conversations", "close_reasons", problem)
        if reason in CLOSE_REASON_LABELS:
            problem = f"{reason!r} is the metric's own label; pick another name"
            raise ConfigError(file, "conversations", "close_reasons", problem)
    if len(set(reasons)) != len(reasons):
        raise ConfigError(file, "conversations", "close_reasons", "a reason is listed twice")
    if conversations.history_days < 0:
        raise ConfigError(file, "conversations", "history_days", "cannot be negative")
    if not 1 <= conversations.history_limit <= 100:
        raise ConfigError(file, "conversations", "history_limit", "runs from 1 to 100")


def check_canned(replies: list[CannedReplyConfig], queues: set[str], file: str) -> None:
    seen: dict[str, int] = {}
    for i, reply in enumerate(replies):
        where = entry("canned_replies", i, reply.id.strip())
        if not reply.id.strip():
            raise ConfigError(file, where, "id", "cannot be empty")
        if reply.id in seen:
            raise ConfigError(file, where, "id", duplicate("canned reply id", reply.id, seen, i))
        seen[reply.id] = i
        if not reply.text.strip():
            raise ConfigError(file, where, "text", "cannot be empty")
        unknown = sorted(set(placeholders_in(reply.text)) - set(PLACEHOLDERS))
        if unknown:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            problem = f"unknown placeholder {{{unknown[0]}}}; the placeholders are {known}"
            raise ConfigError(file, where, "text", problem)
        for queue in reply.queues:
            if queue not in queues:
                raise ConfigError(file, where, "queues", no_queue(queue, queues))


def check_history(history: HistoryConfig, file: str) -> None:
    if not 1 <= history.max_scan <= 1_000_000:
        raise ConfigError(file, "history", "max_scan", "runs from 1 to 1000000")
