"""An SMTP listener (aiosmtpd) for a mail server that forwards support mail to the gateway,
instead of the gateway reading a mailbox over IMAP.

It runs on the gateway's own event loop (aiosmtpd's SMTP protocol on ``loop.create_server``,
not its threaded Controller), so a mail is stored through the same path as IMAP mail, and
the sending server hears "250" only once it is: on any failure it hears "451" and retries
later, as mail servers do.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from adapters.email.config import EmailConfig, MailboxConfig, SmtpInConfig

log = logging.getLogger("zhongtai.email")

Deliver = Callable[[MailboxConfig, bytes], Awaitable[None]]


class _Handler:
    def __init__(self, listener: SmtpListener) -> None:
        self.listener = listener

    def _peer_allowed(self, session: Session) -> bool:
        networks = self.listener.networks
        if not networks:
            return True
        peer = session.peer
        host = peer[0] if isinstance(peer, tuple) and peer else None
        try:
            address = ipaddress.ip_address(str(host))
        except ValueError:
            return False
        return any(address in network for network in networks)

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not self._peer_allowed(session):
            return "550 5.7.1 this client may not send mail here"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.listener.route(address) is None:
            return f"550 5.1.1 <{address}>: recipient not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        if isinstance(data, str):
            data = data.encode("utf-8", errors="surrogateescape")
        # What a final-delivery MTA adds: the envelope sender, so that a bounce (sent from
        # the null sender <>) is recognised as one.
        sender = envelope.mail_from or ""
        data = f"Return-Path: <{sender}>\r\n".encode("ascii", errors="replace") + data
        mailboxes: dict[str, MailboxConfig] = {}
        for recipient in envelope.rcpt_tos:
            mailbox = self.listener.route(recipient)
            if mailbox is not None:
                mailboxes[mailbox.name] = mailbox
        try:
            for mailbox in mailboxes.values():
                await self.listener.deliver(mailbox, data)
        except Exception:
            log.exception("email: SMTP listener could not store a mail; the sender will retry")
            return "451 4.3.0 the mail could not be stored now; try again later"
        self.listener.received += 1
        return "250 2.0.0 OK: stored"


class SmtpListener:
    def __init__(self, config: EmailConfig, deliver: Deliver) -> None:
        assert config.smtp_in is not None
        self.settings: SmtpInConfig = config.smtp_in
        self.config = config
        self.deliver = deliver
        self.networks = [
            ipaddress.ip_network(n, strict=False) for n in self.settings.allowed_networks
        ]
        self._addresses: dict[str, MailboxConfig] = {}
        for mailbox in config.mailboxes:
            for address in mailbox.addresses:
                self._addresses.setdefault(address, mailbox)
        name = self.settings.default_mailbox
        self._default = config.mailbox(name) if name else next(iter(config.mailboxes), None)
        self._server: asyncio.Server | None = None
        self.received = 0

    def route(self, recipient: str) -> MailboxConfig | None:
        """The mailbox a recipient's mail goes to, or None to refuse it."""
        address = recipient.strip().strip("<>").lower()
        if address in self._addresses:
            return self._addresses[address]
        domain = address.rpartition("@")[2]
        if domain and domain in self.settings.allowed_domains:
            return self._default
        return None

    @property
    def listening(self) -> bool:
        return self._server is not None and self._server.is_serving()

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        handler = _Handler(self)
        loop = asyncio.get_running_loop()

        def protocol() -> Any:
            return SMTP(
                handler,
                data_size_limit=self.settings.max_bytes,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname="zhongtai",
                ident="Zhongtai",
                timeout=60,
            )

        self._server = await loop.create_server(protocol, self.settings.host, self.settings.port)
        log.info("email: SMTP listener on %s:%s", self.settings.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                pass
            self._server = None
