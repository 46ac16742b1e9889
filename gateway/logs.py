"""Logging: one line per event, plain or JSON.

Fields that say what an event is about become JSON keys (and ``key=value`` pairs at the end
of a plain line). They come from two places:

- ``extra=`` on the call, e.g. ``log.info("...", extra={"conversation": conv_id})``;
- the log context of the task: :func:`set_log_fields` (the agent socket sets ``agent`` for
  the connection and ``conversation`` / ``offer`` for each frame it handles), so that every
  line logged while handling an agent's frame names the agent and the conversation without
  each call passing them.

The field names are fixed (docs/operations.md): ``agent``, ``conversation``, ``offer``.

Every line, traceback included, passes :func:`gateway.masking.mask_credentials` on its way
out, so a password in a URL never reaches the log whoever logged it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import msgspec

from gateway.masking import mask_credentials

FIELDS = ("agent", "conversation", "offer")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_context: ContextVar[Mapping[str, str]] = ContextVar(
    "zhongtai_log_fields", default=MappingProxyType({})
)


def set_log_fields(**fields: object) -> None:
    """The fields of every record logged from now on by this task (and by tasks it starts),
    replacing those set before; None values are left out."""
    _context.set({k: str(v) for k, v in fields.items() if v is not None and v != ""})


def ids_of(frame: object) -> dict[str, Any]:
    """The conversation and offer a protocol frame is about, as log fields."""
    return {
        "conversation": getattr(frame, "conversation_id", None),
        "offer": getattr(frame, "offer_id", None),
    }


def log_fields() -> dict[str, str]:
    return dict(_context.get())


class ContextFields(logging.Filter):
    """Adds the task's log fields to each record; ``extra=`` given on the call wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the extra fields, and the
    traceback (newlines escaped) as ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        # Masked field by field, before encoding: JSON's escapes would hide a password's
        # quotes and backslashes from the pattern.
        masked = {k: mask_credentials(v) if isinstance(v, str) else v for k, v in entry.items()}
        return msgspec.json.encode(masked, enc_hook=lambda v: mask_credentials(str(v))).decode()


class PlainFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...`` (a traceback follows on its own lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask_credentials(super().format(record))

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


def setup_logging(level: str = "info", json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else PlainFormatter())
    handler.addFilter(ContextFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
