"""Guards every boundary that reads input from outside shares: JSON nested too deeply to be
anything we accept, and telling a client's fault (a hang-up mid-body, a broken body) from
an error of ours.

Both live here, next to the message model, because adapters may import only adapters and the
gateway imports both: the agent, supervisor and web chat sockets, the review webhook and the
admin API all decode through :func:`decode_json`, so a ``[[[[...]]]]`` ten thousand deep is
one clear refusal everywhere instead of a RecursionError (a traceback, and a 503 that tells
the sender to retry input that can never succeed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

# No frame, body or review push we take nests deeper than a handful of levels; this leaves a
# wide margin and stays far below the interpreter's recursion limit, so the answer does not
# depend on how deep the stack happens to be when the decoder runs.
MAX_JSON_DEPTH = 64

T = TypeVar("T")

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


class NestedTooDeeply(msgspec.DecodeError):
    """JSON nested deeper than MAX_JSON_DEPTH. A DecodeError, so that every caller's existing
    answer to undecodable input (an error frame, a 400) is the answer to this too."""


def json_depth_ok(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether no array or object in ``data`` nests deeper than ``limit``. Input with fewer
    brackets than the limit (nearly every frame) is let through on two counts; otherwise
    strings are blanked out (a customer may type "[[[[") and the brackets left are walked."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return True
    depth = 0
    for byte in _STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS):
        if byte in _OPEN:
            depth += 1
            if depth > limit:
                return False
        else:
            depth -= 1
    return True


def decode_json(decode: Callable[[bytes | str], T], data: bytes | str) -> T:
    """``decode(data)`` (a msgspec decoder's ``decode``, or ``msgspec.json.decode``), with
    input nested deeper than MAX_JSON_DEPTH refused as NestedTooDeeply before decoding."""
    if not json_depth_ok(data):
        raise NestedTooDeeply(f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    try:
        return decode(data)
    except RecursionError:  # a decoder called from deep in a stack; the check above is first
        raise NestedTooDeeply("JSON nested too deeply") from None


def client_gone(request: web.BaseRequest) -> bool:
    """Whether the client closed its connection: a body read then fails with
    ConnectionResetError, which is the client's doing, not an error of ours."""
    transport = request.transport
    return transport is None or transport.is_closing()


def client_fault(request: web.BaseRequest, exc: BaseException) -> bool:
    """Whether ``exc``, raised while handling ``request``, is the client's doing: it hung up
    mid-body, or its body broke HTTP (a bad chunk, a short Content-Length). Handlers that
    turn every other failure into a 5xx let these through; the gateway's middleware answers
    them with a 400 and one INFO line (gateway/badrequests.py)."""
    if isinstance(exc, HttpProcessingError):
        return 400 <= (exc.code or 400) < 500
    return isinstance(exc, ConnectionResetError) and client_gone(request)
