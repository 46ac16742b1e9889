"""A review as every feed kind and the webhook hand it over, the coercion of loose feed
values into it, its version hash, and the text an agent reads."""

from __future__ import annotations

import email.utils
import hashlib
import html
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

MAX_ID_CHARS = 256
MAX_TEXT_CHARS = 20000


class ReviewError(ValueError):
    """A review that cannot be read; ``field`` names the field (for a 400 with a reason)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


class Review(msgspec.Struct, kw_only=True):
    id: str
    author: str = ""
    author_id: str = ""
    rating: float | None = None  # on a scale of 5
    title: str = ""
    text: str = ""
    time: datetime | None = None
    product: str = ""
    url: str = ""
    deleted: bool = False
    # Feed-specific facts kept as message metadata (app_version, language, developer_reply).
    extra: dict[str, str] = {}

    def version_hash(self) -> str:
        """Changes when what the customer wrote changes: rating, title or text. A new
        timestamp, vote count or app version alone is not an edit."""
        rating = None if self.rating is None else round(self.rating, 2)
        raw = msgspec.json.encode([rating, _squash(self.title), _squash(self.text)])
        return hashlib.sha256(raw).hexdigest()[:16]


def _squash(text: str) -> str:
    return " ".join(text.split())


# Coercion of loose feed values.


def as_id(value: Any, field: str = "id") -> str:
    if isinstance(value, bool) or value is None:
        raise ReviewError(field, "missing")
    if isinstance(value, int | float):
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str):
        raise ReviewError(field, f"must be a string or a number, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ReviewError(field, "empty")
    if len(value) > MAX_ID_CHARS or any(ord(c) < 32 for c in value):
        raise ReviewError(field, f"at most {MAX_ID_CHARS} printable characters")
    return value


def as_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ReviewError(field, "must be a string, not a boolean")
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise ReviewError(field, f"must be a string, not {type(value).__name__}")
    return value.strip()[:MAX_TEXT_CHARS]


def as_rating(value: Any, field: str = "rating", scale: float = 5.0) -> float | None:
    """A star rating on a scale of 5 from a number or a numeric string; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReviewError(field, "must be a number, not a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ReviewError(field, f"not a number: {value[:40]!r}") from None
    if not isinstance(value, int | float) or value != value:
        raise ReviewError(field, "must be a number")
    rating = float(value) * 5.0 / scale
    if not 0.0 <= rating <= 5.0:
        raise ReviewError(field, f"{value} is outside 0 to {scale:g}")
    return rating


def as_time(value: Any, field: str = "time") -> datetime | None:
    """ISO 8601, RFC 2822 (RSS), seconds or milliseconds since the epoch, or a protobuf
    Timestamp ({"seconds": ..., "nanos": ...}, as Google's APIs give)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict) and "seconds" in value:
        try:
            seconds = float(value["seconds"]) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            raise ReviewError(field, "seconds must be a number") from None
        return _from_epoch(seconds, field)
    if isinstance(value, bool):
        raise ReviewError(field, "must be a time, not a boolean")
    if isinstance(value, int | float):
        # Milliseconds: a number of seconds this large would be after the year 5000.
        return _from_epoch(value / 1000 if value > 1e11 else float(value), field)
    if not isinstance(value, str):
        raise ReviewError(field, f"must be an ISO 8601 time, not {type(value).__name__}")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            raise ReviewError(field, f"not an ISO 8601 time: {text[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _from_epoch(seconds: float, field: str) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ReviewError(field, f"{seconds} is no time") from None


def as_flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "deleted")
    return bool(value)


_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p|/div|/li)\s*/?>", re.I)


def html_to_text(markup: str) -> str:
    """Feed entries carry (sanitised) HTML; agents read text."""
    text = _TAG.sub("", _BREAK.sub("\n", markup))
    lines = (" ".join(line.split()) for line in html.unescape(text).splitlines())
    return "\n".join(line for line in lines if line).strip()


# What the agent reads.


def stars(rating: float) -> str:
    filled = max(0, min(5, round(rating)))
    return "★" * filled + "☆" * (5 - filled) + f" {rating:g}/5"


def describe(review: Review, estimated: int | None, product: str = "") -> str:
    """The message text of a review: its stars (or the estimate), title, text, and where
    it was left."""
    if review.rating is not None:
        head = stars(review.rating)
    elif estimated is not None:
        head = f"No rating (about {estimated}/5 from its words)"
    else:
        head = "No rating"
    if review.title:
        head += f" · {review.title}"
    lines = [head]
    if review.text:
        lines.append(review.text)
    where = " · ".join(part for part in (review.product or product, review.url) if part)
    if where:
        lines.append(f"— {where}")
    return "\n".join(lines)


def describe_edit(
    before_rating: float | None, before_hash_text: tuple[str, str], after: Review
) -> str:
    """What changed, in one line: "★5 → ★1, new text"."""
    changes: list[str] = []
    if before_rating != after.rating:
        old = "no rating" if before_rating is None else f"★{before_rating:g}"
        new = "no rating" if after.rating is None else f"★{after.rating:g}"
        changes.append(f"{old} → {new}")
    before_title, before_text = before_hash_text
    if before_title != _digest(after.title):
        changes.append("new title")
    if before_text != _digest(after.text):
        changes.append("new text")
    return ", ".join(changes) or "changed"


def _digest(text: str) -> str:
    return hashlib.sha256(_squash(text).encode()).hexdigest()[:12]


def digests(review: Review) -> tuple[str, str]:
    """Short digests of title and text, kept to say later which of them an edit changed."""
    return _digest(review.title), _digest(review.text)
