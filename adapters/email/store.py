"""Mail content kept for agents: the full text of each mail (the agent sees it with quotes
folded) and attachments up to a size limit. Each item lives under an unguessable token,
for ``content_ttl_s``, and the adapter serves it at ``/email/content/<token>``.

The token is the only key: whoever has the link can read the item, like a link in a
helpdesk notification mail. It is 144 random bits, so links cannot be guessed.
"""

from __future__ import annotations

import secrets
from typing import Any, NamedTuple
from urllib.parse import quote

from aiohttp import web

from adapters.email.keys import EmailKeys

PATH_PREFIX = "/email/content/"
# Shown inline in a browser: plain text and raster images. Anything else (HTML, SVG, PDF,
# scripts) downloads, so a customer's attachment never runs in the gateway's origin.
_INLINE = {"text/plain", "image/png", "image/jpeg", "image/gif", "image/webp"}


class Item(NamedTuple):
    name: str
    content_type: str
    data: bytes


class ContentStore:
    def __init__(self, redis: Any, keys: EmailKeys, ttl_s: float) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = max(1, int(ttl_s))

    async def put(self, name: str, content_type: str, data: bytes) -> str:
        """Store an item; returns its URL path."""
        token = secrets.token_urlsafe(18)
        key = self.keys.content(token)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"name": name, "type": content_type, "data": data})
            pipe.expire(key, self.ttl)
            await pipe.execute()
        return PATH_PREFIX + token

    async def get(self, token: str) -> Item | None:
        raw = await self.redis.hgetall(self.keys.content(token))
        if not raw or b"data" not in raw:
            return None
        return Item(
            raw.get(b"name", b"file").decode(errors="replace"),
            raw.get(b"type", b"application/octet-stream").decode(errors="replace"),
            raw[b"data"],
        )

    async def handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if not (16 <= len(token) <= 64) or not token.replace("-", "").replace("_", "").isalnum():
            raise web.HTTPNotFound(text="no such content")
        item = await self.get(token)
        if item is None:
            raise web.HTTPNotFound(text="no such content (it may have expired)")
        content_type = item.content_type if item.content_type in _INLINE else None
        disposition = "inline" if content_type else "attachment"
        headers = {
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(item.name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
            "Cache-Control": "private, max-age=3600",
            "Referrer-Policy": "no-referrer",
        }
        if content_type == "text/plain":
            return web.Response(
                body=item.data, headers=headers, charset="utf-8", content_type="text/plain"
            )
        return web.Response(
            body=item.data,
            headers=headers,
            content_type=content_type or "application/octet-stream",
        )
