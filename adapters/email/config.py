"""The ``[email]`` table: mailboxes (IMAP in, SMTP out), an optional SMTP listener, and the
limits that keep one mail from costing too much.

Decoded strictly like every table. Passwords may come from the environment instead of the
file (see :func:`apply_environment`), so a container's config holds no secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

MiB = 1024 * 1024
DAY_S = 86400.0

# Mailbox names end up in Redis keys, log lines and environment variable names.
MailboxName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]

# Deliberately plain: local@domain, no spaces, no angle brackets, no line breaks. Anything
# that passes goes into From and the SMTP envelope.
_ADDRESS = re.compile(
    r"^[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$|^[^@\s<>]+@localhost$"
)


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ImapConfig(_Strict, kw_only=True):
    """Where a mailbox's mail is read.

    ``tls``: implicit TLS (port 993). Without it the connection is plain text, for a server on
    the same host or network only (aioimaplib has no STARTTLS).
    """

    host: str
    port: Port = 993
    tls: bool = True
    user: str
    password: str = ""
    folder: str = "INBOX"
    # A CA bundle (PEM) to trust besides the system's, for a private CA; tls_verify = false
    # accepts any certificate (tests, never production).
    ca_file: str | None = None
    tls_verify: bool = True
    timeout_s: Seconds = 30.0


class SmtpConfig(_Strict, kw_only=True):
    """Where a mailbox's replies are sent.

    ``tls``: implicit TLS (port 465). Without it, ``starttls`` decides: ``auto`` upgrades
    when the server offers STARTTLS, ``required`` refuses to send otherwise, ``off`` never
    upgrades. ``user`` unset: no AUTH.
    """

    host: str
    port: Port = 465
    tls: bool = True
    starttls: Literal["auto", "required", "off"] = "auto"
    user: str | None = None
    password: str = ""
    ca_file: str | None = None
    tls_verify: bool = True
    timeout_s: Seconds = 30.0


class MailboxConfig(_Strict, kw_only=True):
    """One support address. ``imap`` absent: mail comes only through the SMTP listener.
    ``smtp`` absent: agents' replies are refused with ``no_smtp``."""

    name: MailboxName
    address: str
    # Shown as "<agent> via <display_name>" in the From of replies.
    display_name: str = "Support"
    # Other addresses that deliver into this mailbox (the SMTP listener routes them here; mail
    # from any of them is our own and never routed).
    aliases: list[str] = []
    imap: ImapConfig | None = None
    smtp: SmtpConfig | None = None
    # IMAP IDLE when the server offers it; polling every poll_s otherwise. With IDLE the
    # mailbox is also checked every idle_renew_s, in case a notification was lost.
    idle: bool = True
    poll_s: Annotated[float, msgspec.Meta(ge=0.05)] = 60.0
    idle_renew_s: Annotated[float, msgspec.Meta(ge=1, le=1740)] = 300.0
    # After a mail is stored: flag it \Seen, and/or move it to processed_folder.
    mark_seen: bool = True
    processed_folder: str | None = None
    # Append a copy of each reply to this IMAP folder (best effort), e.g. "Sent".
    sent_folder: str | None = None

    def __post_init__(self) -> None:
        self.address = self.address.strip().lower()
        if not is_address(self.address):
            raise ValueError(f"address: {self.address!r} is not an email address")
        self.aliases = [a.strip().lower() for a in self.aliases]
        for alias in self.aliases:
            if not is_address(alias):
                raise ValueError(f"aliases: {alias!r} is not an email address")
        if "\r" in self.display_name or "\n" in self.display_name:
            raise ValueError("display_name: line breaks are not allowed in a header")
        if self.sent_folder is not None and self.imap is None:
            raise ValueError("sent_folder: needs an imap table to append to")

    @property
    def addresses(self) -> set[str]:
        return {self.address, *self.aliases}


class SmtpInConfig(_Strict, kw_only=True):
    """A listener for a mail server that forwards mail to the gateway.

    It has no AUTH: keep it on a private address, and name the networks that may connect.
    Recipients must be a mailbox's address or alias, or in ``allowed_domains`` (then they go
    to ``default_mailbox``); anything else is refused with 550.
    """

    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 2525
    max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 25 * MiB
    allowed_domains: list[str] = []
    # CIDRs ("10.0.0.0/8", "127.0.0.1/32") allowed to connect; empty: any.
    allowed_networks: list[str] = []
    default_mailbox: str | None = None

    def __post_init__(self) -> None:
        self.allowed_domains = [d.strip().lower().lstrip("@") for d in self.allowed_domains]
        for network in self.allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"allowed_networks: {network!r} is not a network") from None


class EmailConfig(_Strict, kw_only=True):
    """The ``[email]`` table."""

    enabled: bool = True
    mailboxes: list[MailboxConfig] = []
    smtp_in: SmtpInConfig | None = None
    # A mail in a thread whose conversation closed less than this long ago reopens it.
    reopen_within_s: Annotated[float, msgspec.Meta(ge=0)] = 7 * DAY_S
    # Attachments up to this size are stored (and served to agents); bigger ones are listed
    # with name, type and size only.
    attachment_store_limit_bytes: Annotated[int, msgspec.Meta(ge=0)] = 10 * MiB
    # A bigger mail is read only up to this size over IMAP, and kept with a note.
    max_message_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = 50 * MiB
    # The text an agent sees, after quotes are folded; the full body is kept.
    max_text_chars: Annotated[int, msgspec.Meta(ge=100)] = 20000
    # How long stored bodies and attachments, and the Message-ID -> thread map, are kept.
    content_ttl_s: Seconds = 90 * DAY_S
    thread_ttl_s: Seconds = 365 * DAY_S
    # Mail from mailing lists (List-Id, Precedence: list) is noise unless the support address
    # itself is a list (a Google Group, say): then turn this on.
    accept_list_mail: bool = False
    # Serve stored bodies and attachments to agents at /email/content/<token> (unguessable
    # links, valid for content_ttl_s).
    serve_content: bool = True
    # Sending: attempts for transient SMTP failures (4xx, connection errors), with
    # exponential backoff from retry_base_s.
    send_attempts: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    retry_base_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # IMAP reconnects back off exponentially up to this.
    reconnect_max_s: Annotated[float, msgspec.Meta(ge=0.05)] = 300.0

    def __post_init__(self) -> None:
        names = [m.name for m in self.mailboxes]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"mailboxes: duplicate mailbox name {name!r}")
        if self.smtp_in is not None and self.smtp_in.default_mailbox is not None:
            if self.smtp_in.default_mailbox not in names:
                raise ValueError(
                    f"smtp_in: default_mailbox {self.smtp_in.default_mailbox!r} names no mailbox"
                )

    def mailbox(self, name: str) -> MailboxConfig | None:
        return next((m for m in self.mailboxes if m.name == name), None)


def env_name(mailbox: str, server: Literal["IMAP", "SMTP"]) -> str:
    """``ZHONGTAI_EMAIL_<MAILBOX>_<IMAP|SMTP>_PASSWORD``, the mailbox name in upper case with
    everything but letters and digits turned into ``_``."""
    return f"ZHONGTAI_EMAIL_{re.sub(r'[^A-Za-z0-9]', '_', mailbox).upper()}_{server}_PASSWORD"


def apply_environment(config: EmailConfig, env: Mapping[str, str]) -> EmailConfig:
    """Passwords from the environment win over the file; set-but-empty variables are ignored,
    like the gateway's own secrets."""
    for mailbox in config.mailboxes:
        if mailbox.imap is not None and (value := env.get(env_name(mailbox.name, "IMAP"))):
            mailbox.imap.password = value
        if mailbox.smtp is not None and (value := env.get(env_name(mailbox.name, "SMTP"))):
            mailbox.smtp.password = value
    return config
