"""The email channel (see adapter.py and docs/channels/email.md)."""

from adapters.email.adapter import EmailAdapter
from adapters.email.config import EmailConfig

__all__ = ["EmailAdapter", "EmailConfig"]
