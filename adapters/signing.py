"""The one signature Zhongtai's webhooks speak, both ways: the reviews we are pushed
(adapters/reviews/webhook.py checks it) and the lifecycle events we push
(gateway/events/delivery.py makes it). ``X-Zhongtai-Timestamp`` carries unix seconds and
``X-Zhongtai-Signature`` ``sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>``:
the timestamp is signed with the body, so that a captured request cannot be replayed later
with a fresh timestamp."""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Zhongtai-Timestamp"
SIGNATURE_HEADER = "X-Zhongtai-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body (for senders and tests)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Whether ``given`` (a signature header's value) signs this timestamp and body; the
    comparison takes the same time whatever the difference."""
    scheme, _, digest = given.strip().partition("=")
    expected = sign(secret, timestamp, body)
    return scheme.lower() == "sha256" and hmac.compare_digest(
        expected.encode(), f"sha256={digest.lower()}".encode()
    )
