"""Which thread a mail belongs to.

Each email thread is a conversation of its own, named by its root: the first Message-ID of
the thread. Redis maps every Message-ID we stored or sent to its root, so a reply finds its
thread through In-Reply-To or References, whichever client wrote it and however long the
chain. Clients that drop both (some webmail, some phones) keep the subject: our replies
carry a token "[#1a2b3c4d5e]" that maps to the root.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from adapters.email.keys import EmailKeys
from adapters.email.parse import ParsedMail

_TOKEN = re.compile(r"\[#([0-9a-f]{10})\]")
# Reply prefixes, in the languages our customers' clients write them; Re[2]: and RE: too.
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|antw|vs|ref|回复|回覆|答复|답장)(\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def token_for(root: str) -> str:
    return hashlib.sha256(root.encode("utf-8", errors="surrogatepass")).hexdigest()[:10]


def find_token(subject: str) -> str | None:
    match = _TOKEN.search(subject)
    return match.group(1) if match else None


def strip_token(subject: str) -> str:
    return re.sub(r"\s*\[#[0-9a-f]{10}\]\s*", " ", subject).strip()


def reply_subject(subject: str, token: str) -> str:
    """ "Re: <subject> [#token]": one "Re:", however many the thread piled up, and the token
    once."""
    base = strip_token(subject)
    base = _REPLY_PREFIX.sub("", base).strip() or "(no subject)"
    return f"Re: {base} [#{token}]"


class Threads:
    def __init__(self, redis: Any, keys: EmailKeys, ttl_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = max(1, int(ttl_s))

    async def resolve(self, mail: ParsedMail) -> str:
        """The thread root of a mail: a known parent's root; else the subject token's; else
        the first reference (the thread's start, though we never saw it); else the mail
        itself."""
        parents = list(dict.fromkeys([*mail.in_reply_to, *reversed(mail.references)]))
        parents = [p for p in parents if p != mail.message_id]
        if parents:
            async with self.redis.pipeline(transaction=False) as pipe:
                for parent in parents:
                    pipe.hget(self.keys.message(parent), "root")
                roots = await pipe.execute()
            for root in roots:
                if root:
                    return root.decode()
        token = find_token(mail.subject)
        if token:
            root = await self.redis.get(self.keys.token(token))
            if root:
                return root.decode()
        if mail.references:
            return mail.references[0]
        if mail.in_reply_to:
            return mail.in_reply_to[0]
        return mail.external_id

    async def remember(
        self, root: str, message_id: str, related: Iterable[str] = (), **fields: str
    ) -> None:
        """Map message_id to root (with extra fields on its entry), the related ids (its
        parents, which we may never have seen) to root unless they have a root already, and
        the root's subject token to root."""
        async with self.redis.pipeline(transaction=False) as pipe:
            own = self.keys.message(message_id)
            pipe.hset(own, mapping={"root": root, **fields})
            pipe.expire(own, self.ttl)
            for other in dict.fromkeys([root, *related]):
                if other == message_id:
                    continue
                key = self.keys.message(other)
                pipe.hsetnx(key, "root", root)
                pipe.expire(key, self.ttl)
            pipe.set(self.keys.token(token_for(root)), root, ex=self.ttl)
            await pipe.execute()

    async def lookup(self, message_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.message(message_id))
        return {k.decode(): v.decode() for k, v in raw.items()}
