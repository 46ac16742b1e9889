"""What makes a WeChat callback authentic, checked before its body is parsed or decrypted.

WeChat signs the query of every callback: ``signature`` = SHA-1 of the sorted Token,
``timestamp`` and ``nonce``, which says nothing about the body and never expires. So a
callback captured once could be replayed for ever with any body (plaintext mode) or the same
body (safe mode). Hence:

- the timestamp must be within ``timestamp_tolerance_s`` of our clock;
- each (timestamp, nonce) pair is taken once per account within that window, across
  processes (:class:`ReplayGuard`, Redis ``SET NX`` with an expiry);
- ``msg_signature`` (safe and compatible mode, WeCom) covers the ciphertext too, and is
  checked here, in constant time, before anything is decrypted (wechatpy compares with
  ``!=``).

Every comparison is on bytes: ``hmac.compare_digest`` refuses ``str`` with non-ASCII
characters (a TypeError, which was a 500), and a query may hold anything.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable

from redis.asyncio import Redis

TIMESTAMP = re.compile(r"[0-9]{1,12}")
# WeChat's nonces are digits, WeCom's letters and digits; the pair becomes part of a key.
NONCE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Refused(Exception):
    """A callback refused with an HTTP status; ``reason`` is the one line the body and the
    log carry, and never holds exception text."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def sign(*parts: str) -> str:
    """WeChat's signature: the SHA-1 (hex) of the parts sorted and joined."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8", "surrogateescape")).hexdigest()


def digest_matches(expected: str, given: str) -> bool:
    """``given`` (from the query, any characters) equals ``expected`` (hex), in constant time."""
    candidate = given.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected.encode(), candidate)


def check_signature(token: str, given: str, *parts: str, what: str = "signature") -> str:
    """Refuse (403) unless ``given`` signs the token and parts; returns the expected value."""
    expected = sign(token, *parts)
    if not digest_matches(expected, given):
        raise Refused(403, f"bad {what}")
    return expected


def check_fresh(timestamp: str, nonce: str, now: float, tolerance_s: float) -> None:
    """Refuse (403) a timestamp that is not unix seconds within the tolerance of ``now``,
    and a nonce WeChat would not send."""
    if not TIMESTAMP.fullmatch(timestamp):
        raise Refused(403, "timestamp must be unix seconds")
    if not NONCE.fullmatch(nonce):
        raise Refused(403, "nonce must be 1 to 64 letters, digits, '_' or '-'")
    skew = abs(now - int(timestamp))
    if skew > tolerance_s:
        raise Refused(
            403,
            f"stale timestamp: {skew:.0f} s away from now (tolerance {tolerance_s:g} s); "
            "check this server's clock",
        )


class ReplayGuard:
    """The (timestamp, nonce) pairs each account took within the tolerance, shared by every
    process. A pair is claimed just before the message is handed on and released when that
    fails, so WeChat's retry of a message we could not store is taken, and a replay of one
    we stored is not."""

    def __init__(self, redis: Redis, key: Callable[..., str], tolerance_s: float) -> None:
        self.redis, self.key = redis, key
        # A timestamp is accepted from tolerance before it to tolerance after it.
        self.ttl_s = max(1, math.ceil(2 * tolerance_s))

    def _key(self, scope: str, timestamp: str, nonce: str) -> str:
        return self.key("seen", scope, f"{timestamp}.{nonce}")

    async def claim(self, scope: str, timestamp: str, nonce: str) -> bool:
        """Whether this is the first use of the pair for ``scope`` within the window."""
        return bool(
            await self.redis.set(self._key(scope, timestamp, nonce), b"1", nx=True, ex=self.ttl_s)
        )

    async def release(self, scope: str, timestamp: str, nonce: str) -> None:
        await self.redis.delete(self._key(scope, timestamp, nonce))
