"""Posting an agent's answer to a review: a generic HTTP endpoint built from the feed's
``reply`` templates, or the Google Play Developer API's ``reviews.reply``.

Every refusal becomes a DeliveryError the agent reads: the store's own error code where it
gives one (Google's ``status``, such as ``PERMISSION_DENIED``), else ``http_<status>``.
Timeouts, 408, 429 and 5xx answers are marked retryable.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp

from adapters.contract import DeliveryError
from adapters.reviews.config import PLACEHOLDER, FeedConfig, ReplyConfig, ReviewsConfig

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})
DETAIL_CHARS = 300


def render(template: str, values: Mapping[str, str], encode: Any) -> str:
    """Replace {name} placeholders (and only those: JSON braces stay as they are)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return encode(values[name]) if name in values else match.group(0)

    return PLACEHOLDER.sub(one, template)


_ENCODERS: dict[str, Any] = {
    "json": lambda v: json.dumps(v, ensure_ascii=False),
    "form": quote_plus,
    "text": lambda v: v,
}


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise DeliveryError("bad_header", "a reply header would contain a line break")
    return value


class Replier:
    def __init__(self, config: ReviewsConfig, session: aiohttp.ClientSession) -> None:
        self.config, self.session = config, session

    async def post(self, feed: FeedConfig, values: Mapping[str, str]) -> None:
        """values: review_id, text, product, feed, author, conversation_id, message_id."""
        if feed.reply is not None:
            await self._generic(feed.reply, values)
        elif feed.google_play is not None:
            await self._google_play(feed, values)
        else:
            raise DeliveryError(
                "no_reply_endpoint",
                f"feed {feed.name} has no reply endpoint; answer on the store's own site",
            )

    async def _generic(self, reply: ReplyConfig, values: Mapping[str, str]) -> None:
        if reply.max_chars and len(values["text"]) > reply.max_chars:
            raise DeliveryError(
                "too_long", f"answers here take at most {reply.max_chars} characters"
            )
        values = {**values, "secret": os.environ.get(reply.secret_env, "")}
        url = render(reply.url, values, lambda v: quote(v, safe=""))
        headers = {k: _header_value(render(v, values, str)) for k, v in reply.headers.items()}
        headers.setdefault("Content-Type", _CONTENT_TYPES[reply.body_format])
        headers.setdefault("User-Agent", self.config.user_agent)
        body = render(reply.body, values, _ENCODERS[reply.body_format])
        await self._call(reply.method, url, headers, body.encode())

    async def _google_play(self, feed: FeedConfig, values: Mapping[str, str]) -> None:
        gp = feed.google_play
        assert gp is not None
        if len(values["text"]) > gp.max_reply_chars:
            raise DeliveryError(
                "too_long", f"Google Play answers take at most {gp.max_reply_chars} characters"
            )
        token = gp.token()
        if not token:
            raise DeliveryError("no_credentials", "no Google Play access token is configured")
        review = quote(values["review_id"], safe="")
        url = f"{gp.list_url}/{review}:reply"
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": self.config.user_agent,
        }
        body = json.dumps({"replyText": values["text"]}, ensure_ascii=False).encode()
        await self._call("POST", url, headers, body)

    async def _call(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        try:
            async with self.session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_s),
            ) as response:
                if 200 <= response.status < 300:
                    return
                raw = await response.content.read(16384)
                code, detail = _error_of(response.status, raw)
                raise DeliveryError(code, detail, retryable=response.status in RETRYABLE)
        except DeliveryError:
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"the reply endpoint could not be reached: {type(exc).__name__}"
            raise DeliveryError("unreachable", detail, retryable=True) from exc


_CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "form": "application/x-www-form-urlencoded",
    "text": "text/plain; charset=utf-8",
}


def _error_of(status: int, raw: bytes) -> tuple[str, str]:
    """The store's error code and message: Google's {"error": {"status", "message"}}, a
    plain {"error": "...", "message": "..."}, or the start of the body."""
    text = raw.decode("utf-8", "replace")
    code, detail = f"http_{status}", " ".join(text.split())[:DETAIL_CHARS]
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            code = str(error.get("status") or error.get("code") or code)
            detail = str(error.get("message") or detail)
        elif isinstance(error, str):
            code = error
            detail = str(data.get("message") or data.get("error_description") or error)
        elif isinstance(data.get("message"), str):
            detail = data["message"]
    return code[:64], f"HTTP {status}: {detail[:DETAIL_CHARS]}" if detail else f"HTTP {status}"
