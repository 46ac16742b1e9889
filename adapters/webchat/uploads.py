"""Files a visitor attaches: ``POST /webchat/upload`` stores one, ``GET /webchat/files/{id}``
serves it to the agent (and back to the visitor).

The upload is the raw body with its ``Content-Type`` and the visitor token in
``X-Visitor-Token``; the answer is the file's id, which the next ``message`` frame names in
``attachments``. Splitting it so keeps the socket's frames small and lets the page show
progress and refusals per file. Every refusal is a 4xx with ``{code, detail}`` that says
what the limit is, and nothing is stored.

The declared type alone proves nothing (any file can be sent as ``image/png``), so images
and PDFs must start with their signature and text must be UTF-8: a renamed HTML page is
refused. Served files never run in the gateway's origin: ``nosniff``, a sandboxing CSP, and
anything but a raster image downloads instead of opening.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from adapters.contract import AdapterHost, Attachment
from adapters.webchat.config import SNIFFED_IMAGES, UploadsConfig
from adapters.webchat.limits import count_this_minute, this_minute
from adapters.webchat.visitors import Visitors

log = logging.getLogger("zhongtai.webchat")

TOKEN_HEADER = "X-Visitor-Token"
MAX_FILES_PER_MESSAGE = 10
NAME_MAX_CHARS = 200
CHUNK_BYTES = 64 * 1024
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/pdf": (b"%PDF-",),
}


def sniff_ok(content_type: str, data: bytes) -> bool:
    """Whether the bytes are what the declared type says, for the types that can be told by
    their first bytes; other types are taken as declared."""
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if content_type in _SIGNATURES:
        return data.startswith(_SIGNATURES[content_type])
    if content_type.startswith("text/"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in data
    return True


def clean_name(raw: str) -> str:
    """A file name to show and to offer on download: no path, no control characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return name[:NAME_MAX_CHARS] or "file"


class StoredFile(msgspec.Struct, frozen=True):
    name: str
    content_type: str
    data: bytes


class FileStore:
    """Uploaded files in Redis, one hash per file under an unguessable id (whoever has the
    link can read the file, like an email attachment link), for ``ttl_s``."""

    FIELDS = ("name", "type", "size", "visitor")

    def __init__(
        self, host: AdapterHost, key: Callable[[str], str], ttl_s: float, prefix: str
    ) -> None:
        # The host, not its Redis client: the client exists only once the gateway started.
        self.host, self.key, self.ttl, self.prefix = host, key, int(ttl_s), prefix

    def url(self, file_id: str) -> str:
        return f"{self.prefix}files/{file_id}"

    async def put(self, visitor_id: str, name: str, content_type: str, data: bytes) -> str:
        file_id = secrets.token_urlsafe(18)
        mapping = {
            "name": name,
            "type": content_type,
            "size": len(data),
            "visitor": visitor_id,
            "data": data,
        }
        async with self.host.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(file_id), mapping=mapping)
            pipe.expire(self.key(file_id), self.ttl)
            await pipe.execute()
        return file_id

    async def get(self, file_id: str) -> StoredFile | None:
        name, ctype, data = await self.host.redis.hmget(self.key(file_id), "name", "type", "data")
        if data is None:
            return None
        return StoredFile(name.decode(errors="replace"), ctype.decode(), data)

    async def attachments(self, visitor_id: str, ids: list[str]) -> list[Attachment] | None:
        """The attachments for a message naming these files, or None when one is unknown,
        expired, or uploaded by someone else (ids travel in messages agents see)."""
        if not all(_ID.match(i) for i in ids):
            return None
        pipe = self.host.redis.pipeline(transaction=False)
        for file_id in ids:
            pipe.hmget(self.key(file_id), *self.FIELDS)
        found = await pipe.execute()
        out: list[Attachment] = []
        for file_id, (name, ctype, size, owner) in zip(ids, found, strict=True):
            if owner is None or owner.decode() != visitor_id:
                return None
            out.append(
                Attachment(
                    name=name.decode(errors="replace"),
                    content_type=ctype.decode(),
                    size=int(size),
                    url=self.url(file_id),
                )
            )
        return out


class _Refuse(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class UploadRoutes:
    """The HTTP side: the upload, its CORS preflight (the widget may be embedded in another
    site), and serving a file."""

    def __init__(
        self,
        config: UploadsConfig,
        store: FileStore,
        visitors: Visitors,
        origin_allowed: Callable[[web.Request], bool],
    ) -> None:
        self.config, self.store, self.visitors = config, store, visitors
        self.origin_allowed = origin_allowed

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/upload", self.upload)
        app.router.add_route("OPTIONS", "/upload", self.preflight)
        app.router.add_get("/files/{id}", self.serve)

    def _cors(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if origin is None or not self.origin_allowed(request):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def preflight(self, request: web.Request) -> web.Response:
        headers = self._cors(request)
        if headers:
            headers["Access-Control-Allow-Methods"] = "POST"
            headers["Access-Control-Allow-Headers"] = f"Content-Type, {TOKEN_HEADER}"
            headers["Access-Control-Max-Age"] = "600"
        return web.Response(status=204, headers=headers)

    async def upload(self, request: web.Request) -> web.Response:
        try:
            body = await self._accept(request)
            status = 201
        except _Refuse as refused:
            body, status = {"code": refused.code, "detail": refused.detail}, refused.status
        except (RedisError, OSError):
            log.warning("webchat: upload failed", exc_info=True)
            body = {"code": "unavailable", "detail": "storage unavailable; try again"}
            status = 503
        response = web.json_response(body, status=status, headers=self._cors(request))
        if status == 413:
            response.force_close()  # what is left of the body is not worth keeping alive for
        return response

    async def _accept(self, request: web.Request) -> dict[str, Any]:
        cfg = self.config
        if not cfg.enabled:
            raise _Refuse(403, "uploads_off", "this chat does not take files")
        if not self.origin_allowed(request):
            raise _Refuse(403, "origin_not_allowed", "origin not allowed")
        limit = cfg.max_bytes
        too_big = f"the file is larger than the limit of {limit} bytes"
        if request.content_length is not None and request.content_length > limit:
            raise _Refuse(413, "too_large", too_big)
        token = request.headers.get(TOKEN_HEADER, "")
        visitor_id = await self.visitors.visitor_of(token)
        if visitor_id is None:
            raise _Refuse(400, "bad_token", f"missing or unknown {TOKEN_HEADER}; say hello first")
        content_type = request.content_type.lower()
        if content_type not in cfg.types:
            allowed = ", ".join(cfg.types)
            detail = f"{content_type} is not taken; allowed: {allowed}"
            raise _Refuse(415, "unsupported_type", detail)
        await self._count(visitor_id)
        data = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK_BYTES):
            data += chunk
            if len(data) > limit:
                raise _Refuse(413, "too_large", too_big)
        if not data:
            raise _Refuse(400, "empty", "the body is empty; send the file's bytes")
        if not sniff_ok(content_type, bytes(data)):
            raise _Refuse(415, "type_mismatch", f"the file's content is not {content_type}")
        name = clean_name(request.query.get("name", ""))
        file_id = await self.store.put(visitor_id, name, content_type, bytes(data))
        size = len(data)
        url = self.store.url(file_id)
        return {"id": file_id, "name": name, "content_type": content_type, "size": size, "url": url}

    async def _count(self, visitor_id: str) -> None:
        per_minute = self.config.per_minute
        if not per_minute:
            return
        key = self.visitors.uploads_key(visitor_id, this_minute())
        if await count_this_minute(self.store.host.redis, key) > per_minute:
            self.store.host.limited("webchat.uploads.per_minute")
            detail = f"at most {per_minute} files a minute; wait a little"
            raise _Refuse(429, "rate_limited", detail)

    async def serve(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        try:
            found = await self.store.get(file_id) if _ID.match(file_id) else None
        except (RedisError, OSError):
            log.warning("webchat: reading file failed", exc_info=True)
            raise web.HTTPServiceUnavailable(text="storage unavailable; try again") from None
        if found is None:
            raise web.HTTPNotFound(text="no such file (it may have expired)")
        inline = found.content_type in SNIFFED_IMAGES
        disposition = "inline" if inline else "attachment"
        headers = {
            "Content-Type": found.content_type,
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(found.name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
            "Referrer-Policy": "no-referrer",
        }
        return web.Response(body=found.data, headers=headers)
