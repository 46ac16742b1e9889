"""What parsing a mail yields (parse.py): the mail, its attachments and, for a bounce, its
delivery report. Apart from the parser so that the modules that only read a parsed mail
(threading, loop detection, inbound) need not know how it was read."""

from __future__ import annotations

import dataclasses
from datetime import datetime

MAX_NOTES = 12


@dataclasses.dataclass
class ParsedAttachment:
    name: str
    content_type: str
    size: int
    data: bytes | None  # None: not read in full (truncated mail)
    inline: bool = False
    content_id: str | None = None


@dataclasses.dataclass
class DeliveryReport:
    """What a delivery status notification (RFC 3464) says, or what a non-standard bounce's
    text lets us guess."""

    action: str  # failed | delayed | delivered | relayed | expanded | ""
    status: str  # "5.1.1"
    recipients: list[str]
    diagnostic: str
    # Message-IDs of the mail that bounced: from the returned message or headers, or
    # In-Reply-To.
    original_ids: list[str]


@dataclasses.dataclass
class ParsedMail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_address: str | None
    from_name: str | None
    reply_to: str | None
    to: list[str]
    cc: list[str]
    date: datetime | None
    # The whole body as text, and what the agent sees (quotes folded).
    text: str
    visible: str
    folded: bool
    from_html: bool
    attachments: list[ParsedAttachment]
    headers: dict[str, str]
    content_type: str
    report: DeliveryReport | None
    # Message-IDs of mails inside this one (message/rfc822, text/rfc822-headers parts).
    returned_ids: list[str]
    notes: list[str]
    size: int
    truncated: bool
    digest: str  # SHA-256 of the raw bytes, hex

    @property
    def external_id(self) -> str:
        """The Message-ID, or for mail without one, a hash of the raw message."""
        return self.message_id or f"<sha256-{self.digest[:40]}@zhongtai.invalid>"

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < MAX_NOTES:
            self.notes.append(text)
