"""Agents' replies as mail: built with the standard library (text and a simple HTML part,
threading headers, our own Message-ID) and sent with aiosmtplib (implicit TLS, STARTTLS,
AUTH), retrying transient failures.

Anything that goes into a header and could carry a line break is checked first: a reply
that would be malformed is refused with ``bad_header`` and never sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
import random
import re
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

import aiosmtplib

from adapters.contract import Attachment, DeliveryError
from adapters.email.config import MailboxConfig, SmtpConfig, is_address

log = logging.getLogger("zhongtai.email")

MAX_REFERENCES = 20
_URL = re.compile(r"(https?://[^\s<>\"']+)")


@dataclasses.dataclass
class Reply:
    """Everything a reply mail needs besides the mailbox's settings."""

    to_address: str
    to_name: str | None
    subject: str
    message_id: str
    in_reply_to: str | None
    references: list[str]
    text: str
    agent_name: str | None
    automatic: bool = False
    attachments: list[Attachment] = dataclasses.field(default_factory=list)


def check_header(field: str, value: str | None) -> None:
    """Refuse a header value with a line break or NUL: the header injection of a subject
    "hi\\r\\nBcc: everyone@example.com"."""
    if value is not None and any(c in value for c in "\r\n\0"):
        raise DeliveryError(
            "bad_header",
            f"the {field} contains a line break, which would change the mail's headers; "
            "the reply was not sent",
        )


def text_to_html(text: str) -> str:
    """The reply as simple HTML: paragraphs, line breaks, links. Escaped first, so the
    agent's text is never markup."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    rendered = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph)
        escaped = _URL.sub(r'<a href="\1">\1</a>', escaped)
        rendered.append("<p>" + escaped.replace("\n", "<br>\n") + "</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        '<body><div dir="auto" style="font-family: sans-serif">\n'
        + "\n".join(rendered)
        + "\n</div></body></html>\n"
    )


def from_name(mailbox: MailboxConfig, agent_name: str | None) -> str:
    if agent_name:
        return f"{agent_name} via {mailbox.display_name}"
    return mailbox.display_name


def build_message(mailbox: MailboxConfig, reply: Reply, tag: str) -> EmailMessage:
    """The reply mail; DeliveryError("bad_header") when a header value would break it."""
    check_header("agent name", reply.agent_name)
    check_header("subject", reply.subject)
    check_header("customer name", reply.to_name)
    check_header("customer address", reply.to_address)
    if not is_address(reply.to_address):
        raise DeliveryError(
            "bad_address", f"{reply.to_address!r} is not an address a reply can go to"
        )
    text = reply.text
    if reply.attachments:
        # Agents attach by link; the mail carries the links.
        lines = [f"{a.name}: {a.url}" for a in reply.attachments if a.url]
        if lines:
            text = text.rstrip() + "\n\n" + "\n".join(lines)
    msg = EmailMessage(policy=SMTP)
    try:
        msg["From"] = formataddr((from_name(mailbox, reply.agent_name), mailbox.address))
        msg["To"] = (
            Address(display_name=reply.to_name or "", addr_spec=reply.to_address)
            if reply.to_name
            else reply.to_address
        )
        msg["Subject"] = reply.subject
        msg["Date"] = format_datetime(datetime.now(UTC), usegmt=True)
        msg["Message-ID"] = reply.message_id
        if reply.in_reply_to:
            msg["In-Reply-To"] = reply.in_reply_to
        if reply.references:
            refs = reply.references
            if len(refs) > MAX_REFERENCES:
                refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
            msg["References"] = " ".join(refs)
        # Lets us recognise our own mail when a server sends it back to the mailbox.
        msg["X-Zhongtai-Mailbox"] = f"{tag}/{mailbox.name}"
        if reply.automatic:
            # RFC 3834: other systems must not auto-reply to ours.
            msg["Auto-Submitted"] = "auto-replied"
            msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(text)
        msg.add_alternative(text_to_html(text), subtype="html")
    except (ValueError, TypeError) as exc:
        # The policy refuses what would make a malformed mail; say so rather than send.
        raise DeliveryError("bad_header", f"the reply could not be built: {exc}") from exc
    return msg


def _tls_context(config: SmtpConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=config.ca_file)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _classify(exc: BaseException) -> tuple[str, str, bool]:
    """(code, detail, transient) for a failed send."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        first = exc.recipients[0] if exc.recipients else None
        message = first.message if first else str(exc)
        code = codes[0] if codes else 550
        return f"smtp_{code}", f"the server refused the recipient: {message}", code < 500
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return "smtp_unsupported", f"the server does not support what is configured: {exc}", False
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = "refused the login" if exc.code in (530, 534, 535) else "refused the mail"
        return f"smtp_{exc.code}", f"the server {what}: {exc.code} {exc.message}", exc.code < 500
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "smtp_tls", f"the server's certificate is not trusted: {exc.reason}", False
    if isinstance(exc, ssl.SSLError):
        return "smtp_tls", f"TLS with the server failed: {exc}", False
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)):
        return "smtp_unavailable", f"the mail server could not be reached: {exc}", True
    return "smtp_error", f"sending failed: {exc!r}", False


async def send_message(
    config: SmtpConfig,
    msg: EmailMessage,
    sender: str,
    recipients: list[str],
    attempts: int,
    retry_base_s: float,
) -> None:
    """Send; transient failures are retried with exponential backoff (with jitter), then
    DeliveryError(retryable=True); permanent ones are DeliveryError at once."""
    if config.tls:
        start_tls: bool | None = False
    else:
        start_tls = {"auto": None, "required": True, "off": False}[config.starttls]
    tls_context = _tls_context(config) if (config.tls or start_tls is not False) else None
    last: tuple[str, str, bool] = ("smtp_unavailable", "not attempted", True)
    for attempt in range(attempts):
        try:
            await aiosmtplib.send(
                msg,
                sender=sender,
                recipients=recipients,
                hostname=config.host,
                port=config.port,
                username=config.user,
                password=config.password if config.user else None,
                use_tls=config.tls,
                start_tls=start_tls,
                tls_context=tls_context,
                timeout=config.timeout_s,
            )
            return
        except Exception as exc:
            last = _classify(exc)
            code, detail, transient = last
            log.warning(
                "email: sending to %s via %s:%d failed (attempt %d of %d): %s",
                recipients,
                config.host,
                config.port,
                attempt + 1,
                attempts,
                detail,
            )
            if not transient:
                raise DeliveryError(code, detail) from exc
            if attempt + 1 < attempts:
                delay = retry_base_s * (2**attempt)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
    code, detail, _ = last
    raise DeliveryError(code, f"{detail} (after {attempts} attempts)", retryable=True)
