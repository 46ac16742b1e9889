"""Every Redis key of the email channel, in one place. All come from ``host.key("email",
...)``, so they carry the tenant's hash tag; Message-IDs are hashed into keys, since they
are long and may hold any printable character."""

from __future__ import annotations

import hashlib
from collections.abc import Callable


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


class EmailKeys:
    def __init__(self, key: Callable[..., str]) -> None:
        self._key = key

    def _k(self, *parts: str) -> str:
        return self._key("email", *parts)

    # Per mailbox.
    def imap_state(self, mailbox: str) -> str:
        """Hash: uidvalidity, last_uid (the highest UID stored and flagged)."""
        return self._k("mbox", mailbox, "imap")

    def lease(self, mailbox: str) -> str:
        """String: the node id of the process that reads this mailbox now (PX lease)."""
        return self._k("mbox", mailbox, "lease")

    def failures(self, mailbox: str) -> str:
        """Hash: "<uidvalidity>:<uid>" -> failed attempts to store that mail."""
        return self._k("mbox", mailbox, "fail")

    # Threading.
    def message(self, message_id: str) -> str:
        """Hash per Message-ID seen or sent: root (the thread's first Message-ID);
        "in:<mailbox>" (conversation it was stored in); out (conversation|message id|
        recipient, for our own replies)."""
        return self._k("msg", digest(message_id))

    def conversation(self, conversation_id: str) -> str:
        """Hash: what a reply needs (root, mailbox, subject, last inbound Message-ID,
        references, address and name to write to, no_auto)."""
        return self._k("conv", conversation_id)

    def token(self, token: str) -> str:
        """String: the thread root that a subject token "[#token]" stands for."""
        return self._k("token", token)

    # Sending.
    def send_lock(self, outbound_id: str) -> str:
        return self._k("send", outbound_id, "lock")

    def sent(self, outbound_id: str) -> str:
        """Hash: state (sent | bounced), message_id, conversation, detail."""
        return self._k("send", outbound_id)

    # Stored content.
    def content(self, token: str) -> str:
        """Hash: name, type, data: a mail's full text or an attachment."""
        return self._k("content", token)
