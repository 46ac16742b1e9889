"""Bad requests are the client's problem: a 4xx and at most one INFO line, never an ERROR
with a traceback, and never a count in ``zhongtai_errors_logged_total``.

Two places see them:

- aiohttp's own parser, before any handler: a request line or header over 8 KB
  (LineTooLong), a malformed request line or header. aiohttp answers 400 itself but logs
  the parse error with ``logger.exception`` on ``aiohttp.server``; :class:`QuietParseErrors`
  turns that record into one INFO line as it is logged, before any handler (the error
  counter included) sees it.
- a handler reading the body: the client hangs up mid-body (ConnectionResetError) or sends
  a broken body (a bad chunk). :func:`client_faults` answers 400 with one INFO line;
  handlers that turn other failures into 5xx let these through (adapters.inputs).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from adapters.inputs import client_fault, client_gone

log = logging.getLogger(__name__)

SERVER_LOGGER = "aiohttp.server"
REASON_CHARS = 120

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reason(exc: BaseException) -> str:
    """One line naming the problem; the client's bytes aiohttp quotes are cut short."""
    text = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    first = first.partition(": bytearray(")[0].partition(": b'")[0].partition(': b"')[0]
    return f"{type(exc).__name__}: {first[:REASON_CHARS]}".rstrip(": ")


class QuietParseErrors(logging.Filter):
    """On ``aiohttp.server``: a request aiohttp could not parse (a 4xx it answers itself)
    becomes one INFO line without a traceback; anything else passes untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "bad request from %s: %s", (remote, _reason(exc))
            record.exc_info, record.exc_text = None, None
        return True


async def quiet_parse_errors(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context: the filter is on aiohttp's server logger while the app runs."""
    quiet = QuietParseErrors()
    server_log = logging.getLogger(SERVER_LOGGER)
    server_log.addFilter(quiet)
    try:
        yield
    finally:
        server_log.removeFilter(quiet)


@web.middleware
async def client_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that hung up mid-body or sent a broken body: 400 and one INFO line."""
    try:
        return await handler(request)
    except (ConnectionResetError, HttpProcessingError) as exc:
        if not client_fault(request, exc):
            raise
        if client_gone(request):
            what = "the client hung up before its body was read"
        else:
            what = f"a broken body: {_reason(exc)}"
        log.info("%s %s: %s", request.method, request.path, what)
        return web.Response(status=400, text=what)
