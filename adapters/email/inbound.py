"""One raw mail, from IMAP or the SMTP listener, to the host: parsed, checked for loops,
threaded, its content stored, ingested, and the thread map updated.

``process()`` returns only when the mail is stored (or was decided to be noise): only then
may IMAP flag it or SMTP answer 250. It is idempotent: a mail processed twice (a refetch
after a crash, a UIDVALIDITY resync) is one message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from adapters.contract import AdapterHost, Attachment, CustomerRef, Inbound
from adapters.email.config import EmailConfig, MailboxConfig
from adapters.email.keys import EmailKeys
from adapters.email.loops import Verdict, classify, suppresses_auto_replies
from adapters.email.parse import ParsedMail, parse_mail
from adapters.email.store import ContentStore
from adapters.email.threading import Threads

log = logging.getLogger("zhongtai.email")

CHANNEL = "email"
MAX_REFS = 40
FULL_TEXT_NAME = "full-message.txt"


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


class Inbox:
    def __init__(
        self,
        config: EmailConfig,
        host: AdapterHost,
        keys: EmailKeys,
        threads: Threads,
        store: ContentStore,
    ) -> None:
        self.config = config
        self.host = host
        self.keys = keys
        self.threads = threads
        self.store = store
        self.own_addresses: set[str] = set()
        for mailbox in config.mailboxes:
            self.own_addresses |= mailbox.addresses
        # Counters by outcome, for logs and tests.
        self.counts: dict[str, int] = {}

    @property
    def redis(self) -> Any:
        return self.host.redis

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    async def process(self, mailbox: MailboxConfig, raw: bytes, truncated_from: int | None) -> None:
        mail = parse_mail(raw, truncated_from=truncated_from)
        verdict = classify(mail, self.own_addresses, self.config.accept_list_mail)
        if verdict.routed and mail.message_id:
            entry = await self.threads.lookup(mail.message_id)
            if "out" in entry:
                verdict = Verdict("own", "a reply we sent came back")
            elif f"in:{mailbox.name}" in entry:
                # Stored before (an IMAP refetch beyond the host's dedupe window).
                self._count("duplicate")
                return
        if not verdict.routed:
            await self._not_routed(mailbox, mail, verdict)
            return
        await self._ingest(mailbox, mail)

    # Customer mail.

    async def _ingest(self, mailbox: MailboxConfig, mail: ParsedMail) -> None:
        root = await self.threads.resolve(mail)
        attachments = await self._attachments(mail)
        text = mail.visible.strip()
        limit = self.config.max_text_chars
        full_kept = mail.folded or len(text) > limit
        if len(text) > limit:
            text = text[:limit].rstrip() + "\n[…]"
            mail.note(f"the text is longer than {limit} characters; see {FULL_TEXT_NAME}")
        if full_kept and mail.text:
            data = mail.text.encode("utf-8")
            url = await self.store.put(FULL_TEXT_NAME, "text/plain", data)
            attachments.insert(
                0,
                Attachment(name=FULL_TEXT_NAME, content_type="text/plain", size=len(data), url=url),
            )
        if mail.notes:
            text = (text + "\n\n" if text else "") + "[" + "; ".join(mail.notes) + "]"
        if not text and not attachments:
            text = "(the mail has no text)"
        customer_id = mail.from_address or f"unknown-sender-{mail.digest[:12]}"
        inbound = Inbound(
            channel=CHANNEL,
            account=mailbox.name,
            external_id=mail.external_id,
            customer=CustomerRef(id=customer_id, name=mail.from_name),
            text=text,
            kind="email",
            attachments=attachments,
            metadata=self._metadata(mail, root),
            thread=root,
            reopen_within_s=self.config.reopen_within_s,
        )
        result = await self.host.ingest(inbound)
        self._count("duplicate" if result.duplicate else "stored")
        conversation = result.conversation_id
        related = [*mail.in_reply_to, *mail.references]
        await self.threads.remember(
            root, mail.external_id, related, **{f"in:{mailbox.name}": conversation}
        )
        await self._remember_conversation(mailbox, mail, root, conversation)
        log.info(
            "email: %s: stored %s from %s in %s%s",
            mailbox.name,
            mail.external_id,
            customer_id,
            conversation,
            " (duplicate)" if result.duplicate else "",
        )

    async def _attachments(self, mail: ParsedMail) -> list[Attachment]:
        limit = self.config.attachment_store_limit_bytes
        found: list[Attachment] = []
        for item in mail.attachments:
            url = None
            if item.data is not None and item.size <= limit:
                url = await self.store.put(item.name, item.content_type, item.data)
            elif item.data is None:
                mail.note(f"attachment {item.name} is incomplete and was not kept")
            else:
                mail.note(
                    f"attachment {item.name} ({_size(item.size)}) is over the "
                    f"{_size(limit)} limit and was not kept"
                )
            found.append(
                Attachment(name=item.name, content_type=item.content_type, size=item.size, url=url)
            )
        return found

    def _metadata(self, mail: ParsedMail, root: str) -> dict[str, str]:
        meta = {
            "subject": mail.subject,
            "message_id": mail.external_id,
            "thread": root,
            "from": mail.from_address or "",
            "to": ", ".join(mail.to),
        }
        optional = {
            "from_name": mail.from_name,
            "reply_to": mail.reply_to,
            "cc": ", ".join(mail.cc),
            "date": mail.date.isoformat() if mail.date else None,
            "in_reply_to": mail.in_reply_to[0] if mail.in_reply_to else None,
            "notes": "; ".join(mail.notes),
            "quoted_folded": "true" if mail.folded else None,
            "from_html": "true" if mail.from_html else None,
            "truncated": "true" if mail.truncated else None,
        }
        meta.update({k: v for k, v in optional.items() if v})
        return meta

    async def _remember_conversation(
        self, mailbox: MailboxConfig, mail: ParsedMail, root: str, conversation: str
    ) -> None:
        """What a reply in this conversation needs: where to write, which subject, which
        Message-ID it answers, and the References chain so far."""
        key = self.keys.conversation(conversation)
        current = await self.redis.hgetall(key)
        refs: list[str] = json.loads(current.get(b"refs", b"[]"))
        for message_id in [*mail.references, *mail.in_reply_to]:
            if message_id not in refs:
                refs.append(message_id)
        if mail.message_id:
            if mail.message_id in refs:
                refs.remove(mail.message_id)
            refs.append(mail.message_id)
        refs = refs[:1] + refs[1:][-(MAX_REFS - 1) :]
        fields: dict[str, str] = {
            "root": root,
            "mailbox": mailbox.name,
            "refs": json.dumps(refs),
            "to": mail.reply_to or mail.from_address or "",
            "name": mail.from_name or "",
            "no_auto": "1" if suppresses_auto_replies(mail) else "",
        }
        if mail.message_id:
            fields["last_in"] = mail.message_id
        if mail.subject and not current.get(b"subject"):
            fields["subject"] = mail.subject
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, int(self.config.thread_ttl_s))
            await pipe.execute()

    # Noise, bounces, our own mail.

    async def _not_routed(self, mailbox: MailboxConfig, mail: ParsedMail, verdict: Verdict) -> None:
        self._count(verdict.kind)
        log.info(
            "email: %s: not routed %s from %s: %s (%s)",
            mailbox.name,
            mail.external_id,
            mail.from_address,
            verdict.kind,
            verdict.reason,
        )
        if verdict.kind not in ("bounce", "auto_reply"):
            return
        for original in verdict.original_ids:
            entry = await self.threads.lookup(original)
            if "out" not in entry:
                continue
            conversation, _, rest = entry["out"].partition("|")
            outbound_id, _, recipient = rest.partition("|")
            if verdict.kind == "bounce":
                detail = verdict.detail.replace("to the recipient", f"to {recipient}", 1)
                await self._bounced(conversation, outbound_id, original, detail)
            else:
                detail = f"{mail.from_address or 'the customer'} answered automatically"
                if mail.subject:
                    detail += f": {mail.subject[:200]}"
                await self.host.tell_agent(conversation, "email_auto_reply", detail)
            return
        if verdict.kind == "bounce":
            log.info(
                "email: %s: a bounce for mail we did not send (or no longer know)", mailbox.name
            )

    async def _bounced(
        self, conversation: str, outbound_id: str, message_id: str, detail: str
    ) -> None:
        key = self.keys.sent(outbound_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={"state": "bounced", "detail": detail, "message_id": message_id})
            pipe.expire(key, int(self.config.thread_ttl_s))
            await pipe.execute()
        self._count("bounce_matched")
        log.warning("email: reply %s in %s bounced: %s", outbound_id, conversation, detail)
        await self.host.tell_agent(conversation, "email_bounced", detail)
