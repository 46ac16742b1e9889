"""Request bodies of the admin API's actions: JSON objects of a declared shape, unknown
fields refused, read with a size limit whatever Content-Length claimed."""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec
from aiohttp import web

from adapters.inputs import decode_json
from gateway.admin.errors import ApiError, decode_problem

MAX_BODY_BYTES = 16 * 1024

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


B = TypeVar("B", bound=Body)


async def read_body(request: web.Request) -> bytes:
    """The request body, refused past MAX_BODY_BYTES whatever Content-Length said."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(8192):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode_body(request: web.Request, type_: type[B]) -> B:
    """The JSON body as ``type_``; an empty body is ``{}``."""
    body = (await read_body(request)).strip() or b"{}"
    try:
        return decode_json(lambda data: msgspec.json.decode(data, type=type_), body)
    except msgspec.DecodeError as exc:
        raise decode_problem(exc) from None
