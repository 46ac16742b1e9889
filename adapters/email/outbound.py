"""An agent's reply to a mail: threaded into the customer's thread, sent once.

Idempotent per ``outbound.message_id``: a record in Redis says the reply went out (a
repeated call returns at once), and a lock keeps two calls for one reply from sending
together. Our Message-ID is derived from the outbound message id, so even a retry after a
crash between the send and the record carries the same Message-ID, which receiving
servers and clients use to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from adapters.contract import AdapterHost, DeliveryError, Outbound
from adapters.email import imap_client
from adapters.email.config import EmailConfig, MailboxConfig, is_address
from adapters.email.keys import EmailKeys
from adapters.email.smtp_out import Reply, build_message, check_header, send_message
from adapters.email.threading import Threads, find_token, reply_subject, token_for

log = logging.getLogger("zhongtai.email")

LOCK_S = 600
MAX_REFS = 40


class Outbox:
    def __init__(
        self, config: EmailConfig, host: AdapterHost, keys: EmailKeys, threads: Threads
    ) -> None:
        self.config = config
        self.host = host
        self.keys = keys
        self.threads = threads
        self.tag = hashlib.sha256(host.tenant.encode()).hexdigest()[:8]
        self._background: set[asyncio.Task[None]] = set()
        self.sent_count = 0

    @property
    def redis(self) -> Any:
        return self.host.redis

    def message_id(self, mailbox: MailboxConfig, outbound_id: str) -> str:
        domain = mailbox.address.rpartition("@")[2]
        return f"<{outbound_id}.{self.tag}@{domain}>"

    async def send(self, outbound: Outbound) -> None:
        mailbox = self.config.mailbox(outbound.account)
        if mailbox is None:
            raise DeliveryError(
                "no_mailbox", f"no mailbox named {outbound.account!r} is configured"
            )
        if mailbox.smtp is None:
            raise DeliveryError(
                "no_smtp", f"mailbox {mailbox.name} has no [smtp] settings; replies cannot be sent"
            )
        subject_override = outbound.metadata.get("subject")
        check_header("subject", subject_override)
        check_header("agent name", outbound.agent_name)
        context = {
            k.decode(): v.decode()
            for k, v in (
                await self.redis.hgetall(self.keys.conversation(outbound.conversation_id))
            ).items()
        }
        automatic = outbound.agent_name is None
        if automatic and context.get("no_auto"):
            log.info(
                "email: automatic message in %s not sent: the customer asked for none",
                outbound.conversation_id,
            )
            return
        record = self.keys.sent(outbound.message_id)
        if await self.redis.hget(record, "state") is not None:
            return  # sent before: a retry of a reply that went out
        lock = self.keys.send_lock(outbound.message_id)
        if not await self.redis.set(lock, self.host.node_id, nx=True, ex=LOCK_S):
            raise DeliveryError("in_progress", "this reply is being sent right now", retryable=True)
        try:
            if await self.redis.hget(record, "state") is not None:
                return
            await self._send(mailbox, outbound, context, subject_override, automatic)
        finally:
            await self.redis.delete(lock)

    async def _send(
        self,
        mailbox: MailboxConfig,
        outbound: Outbound,
        context: dict[str, str],
        subject_override: str | None,
        automatic: bool,
    ) -> None:
        assert mailbox.smtp is not None
        message_id = self.message_id(mailbox, outbound.message_id)
        root = context.get("root") or message_id
        token = token_for(root)
        to_address = context.get("to") or outbound.customer.id
        if not is_address(to_address):
            raise DeliveryError(
                "no_address", "the customer's mail address is unknown; the reply cannot be sent"
            )
        if subject_override:
            subject = subject_override.strip()
            if find_token(subject) is None:
                subject = f"{subject} [#{token}]"
        else:
            subject = reply_subject(context.get("subject", ""), token)
        refs: list[str] = json.loads(context.get("refs", "[]"))
        reply = Reply(
            to_address=to_address,
            to_name=context.get("name") or outbound.customer.name,
            subject=subject,
            message_id=message_id,
            in_reply_to=context.get("last_in"),
            references=refs,
            text=outbound.text,
            agent_name=outbound.agent_name,
            automatic=automatic,
            attachments=list(outbound.attachments),
        )
        msg = build_message(mailbox, reply, self.tag)
        await send_message(
            mailbox.smtp,
            msg,
            mailbox.address,
            [to_address],
            self.config.send_attempts,
            self.config.retry_base_s,
        )
        self.sent_count += 1
        ttl = int(self.config.thread_ttl_s)
        chain = [*refs, message_id]
        chain = chain[:1] + chain[1:][-(MAX_REFS - 1) :]
        record = self.keys.sent(outbound.message_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(
                record,
                mapping={
                    "state": "sent",
                    "message_id": message_id,
                    "conversation": outbound.conversation_id,
                    "to": to_address,
                },
            )
            pipe.expire(record, ttl)
            conversation = self.keys.conversation(outbound.conversation_id)
            pipe.hset(
                conversation,
                mapping={
                    "root": root,
                    "mailbox": mailbox.name,
                    "refs": json.dumps(chain),
                    "subject": context.get("subject") or subject,
                    "to": to_address,
                },
            )
            pipe.expire(conversation, ttl)
            await pipe.execute()
        await self.threads.remember(
            root,
            message_id,
            out=f"{outbound.conversation_id}|{outbound.message_id}|{to_address}",
        )
        log.info(
            "email: %s: sent %s to %s in %s",
            mailbox.name,
            message_id,
            to_address,
            outbound.conversation_id,
        )
        if mailbox.sent_folder and mailbox.imap is not None:
            task = asyncio.create_task(self._append_sent(mailbox, msg.as_bytes()))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _append_sent(self, mailbox: MailboxConfig, data: bytes) -> None:
        """Best effort: the reply has gone out; a missing copy in Sent is logged, not failed."""
        assert mailbox.imap is not None and mailbox.sent_folder is not None
        try:
            await imap_client.append(mailbox.imap, mailbox.sent_folder, data)
        except Exception as exc:
            log.warning(
                "email: %s: could not append the reply to %s: %r",
                mailbox.name,
                mailbox.sent_folder,
                exc,
            )

    async def aclose(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait for background appends (tests)."""
        await asyncio.gather(*list(self._background), return_exceptions=True)
