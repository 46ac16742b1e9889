"""The email channel: mailboxes read over IMAP (or mail pushed through an SMTP listener),
each email thread a conversation, agents' replies sent over SMTP.

How the pieces fit: imap.py (one reader per mailbox, under a lease.py lease, on the
imap_client.py plumbing) and smtp_in.py deliver raw mail to inbound.py, which parses
(parse.py into parsed.py's types, with mimeparts.py, headers.py, htmltext.py, quotes.py),
filters loops (loops.py), threads (threading.py), keeps content
(store.py) and ingests; outbound.py threads and sends replies (smtp_out.py). Redis keys are
built in keys.py. See docs/channels/email.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import ClassVar

import msgspec
from aiohttp import web

from adapters.contract import Adapter, AdapterHost, ConversationEvent, CsatMode, Outbound
from adapters.email.config import EmailConfig, MailboxConfig, apply_environment
from adapters.email.imap import MailboxReader
from adapters.email.inbound import Inbox
from adapters.email.keys import EmailKeys
from adapters.email.outbound import Outbox
from adapters.email.smtp_in import SmtpListener
from adapters.email.store import ContentStore
from adapters.email.threading import Threads

log = logging.getLogger("zhongtai.email")


class EmailAdapter(Adapter[EmailConfig]):
    name: ClassVar[str] = "email"
    csat: ClassVar[CsatMode | None] = "text"
    Config: ClassVar[type[msgspec.Struct]] = EmailConfig

    def __init__(self, config: EmailConfig, host: AdapterHost) -> None:
        # Passwords from ZHONGTAI_EMAIL_<MAILBOX>_{IMAP,SMTP}_PASSWORD win over the file.
        super().__init__(apply_environment(config, os.environ), host)
        self.keys = EmailKeys(host.key)
        self.readers: dict[str, MailboxReader] = {}
        self.listener: SmtpListener | None = None
        self._inbox: Inbox | None = None
        self._outbox: Outbox | None = None
        self._store: ContentStore | None = None
        self._closing = False

    # Lifecycle.

    def web_app(self) -> web.Application | None:
        if not self.config.serve_content:
            return None
        app = web.Application()
        app.router.add_get("/content/{token}", self._content)
        return app

    async def start(self) -> None:
        redis = self.host.redis
        threads = Threads(redis, self.keys, self.config.thread_ttl_s)
        self._store = ContentStore(redis, self.keys, self.config.content_ttl_s)
        self._inbox = Inbox(self.config, self.host, self.keys, threads, self._store)
        self._outbox = Outbox(self.config, self.host, self.keys, threads)
        for mailbox in self.config.mailboxes:
            if mailbox.imap is not None:
                self.readers[mailbox.name] = MailboxReader(
                    mailbox, self.config, redis, self.keys, self.host.node_id, self.process
                )
        if self.config.smtp_in is not None and self.config.smtp_in.enabled:
            self.listener = SmtpListener(self.config, self._deliver)
            await self.listener.start()

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(reader.run(), name=f"email-imap-{name}")
            for name, reader in self.readers.items()
        ]
        if not tasks:
            return
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def ready(self) -> bool:
        if self._closing or self._inbox is None:
            return False
        if self.listener is not None and not self.listener.listening:
            return False
        return all(r.connected or r.standby for r in self.readers.values())

    async def aclose(self) -> None:
        self._closing = True
        if self.listener is not None:
            await self.listener.close()
        if self._outbox is not None:
            await self._outbox.aclose()

    # Inbound.

    @property
    def inbox(self) -> Inbox:
        if self._inbox is None:
            raise RuntimeError("the email adapter has not started")
        return self._inbox

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the email adapter has not started")
        return self._outbox

    async def process(
        self, mailbox: MailboxConfig, raw: bytes, truncated_from: int | None = None
    ) -> None:
        """Store one raw mail for mailbox (or decide it is noise); returns once stored."""
        await self.inbox.process(mailbox, raw, truncated_from)

    async def _deliver(self, mailbox: MailboxConfig, raw: bytes) -> None:
        await self.process(mailbox, raw, None)

    async def _content(self, request: web.Request) -> web.StreamResponse:
        if self._store is None:
            raise web.HTTPServiceUnavailable(text="starting")
        return await self._store.handle(request)

    # Outbound.

    async def send(self, outbound: Outbound) -> None:
        await self.outbox.send(outbound)

    async def notify(self, event: ConversationEvent) -> None:
        """Mail cannot show live events; queue positions go out as auto-replies when the
        queue asks for them (position_auto_reply), through send()."""
