"""Slow clients (slowloris): a connection that has not finished its request headers within
``[server] header_timeout_s``, or its body within ``body_timeout_s`` of its headers, is
closed, on every public endpoint (webhooks, WeChat, the socket upgrades).

aiohttp's server has no header or body deadline of its own: its keep-alive timer only runs
while a connection is idle, and a handler reading a body waits as long as bytes trickle in.
So the deadline sits where the bytes arrive: a subclass of aiohttp's RequestHandler (the
asyncio Protocol of one connection) that starts a timer when a request begins and stops it
when aiohttp's parser has the whole request. A websocket, once upgraded, has no deadline
here: its heartbeat and hello timeout watch it.

The subclass reads a few private attributes of RequestHandler (``_request_count``,
``_messages``, ``_upgraded``, ``_payload_parser``, ``_request_in_progress``) and the Server's
``_kwargs``; tests/test_gateway/guard/test_slow_clients.py fails loudly if an aiohttp upgrade
renames them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

TIMEOUT_BODY = b"the request was not received in time\n"
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(TIMEOUT_BODY), TIMEOUT_BODY)
)

FULL_BODY = b"the gateway has too many connections; try again later\n"
FULL_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
    % (len(FULL_BODY), FULL_BODY)
)

# Called with "headers" or "body" when a slow connection is closed (the metric).
OnSlow = Callable[[str], None]
# Called when a connection is refused because the process holds max_connections already.
OnFull = Callable[[], None]


class Deadlines:
    """What the public port's connections are held to; 0 switches a deadline off. Also the
    cap on open TCP connections (``[server] max_connections``; 0: none), which counts what
    the request-level caps (caps.py) cannot see: connections idle or still sending headers."""

    def __init__(
        self,
        header_timeout_s: float,
        body_timeout_s: float,
        on_slow: OnSlow,
        max_connections: int = 0,
        on_full: OnFull | None = None,
    ) -> None:
        self.header_timeout_s, self.body_timeout_s = header_timeout_s, body_timeout_s
        self.on_slow = on_slow
        self.max_connections, self.on_full = max_connections, on_full


class DeadlineHandler(RequestHandler):
    """One connection: aiohttp's handler with a deadline on each request's headers and body."""

    def __init__(self, manager: web.Server, deadlines: Deadlines, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._deadlines = deadlines
        self._phase: str | None = None  # "headers", "body" or None: no deadline running
        self._timer: asyncio.TimerHandle | None = None
        self._payload: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        limit = self._deadlines.max_connections
        if limit and self._manager is not None and len(self._manager.connections) > limit:
            if self._deadlines.on_full is not None:
                self._deadlines.on_full()
            transport.write(FULL_RESPONSE)  # type: ignore[attr-defined]
            self.force_close()
            return
        # A connection that sends nothing at all is a slow request too.
        self._start("headers")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._upgraded or self._payload_parser is not None or self._force_close:
            # A websocket (its reader is the payload parser from the upgrade on, whether or
            # not the HTTP parser flagged the upgrade): frames are not requests.
            self._stop()
        elif self._request_count > before:  # the parser has a new request's headers
            payload = self._messages[-1][1] if self._messages else None
            self._stop()
            if payload is not None and not payload.is_eof():
                self._start("body", payload)
        elif self._phase == "body" and self._payload is not None and self._payload.is_eof():
            self._stop()
        elif self._phase is None and data:  # the next request on a kept-alive connection
            self._start("headers")

    def _start(self, phase: str, payload: Any = None) -> None:
        self._stop()
        seconds = (
            self._deadlines.header_timeout_s
            if phase == "headers"
            else self._deadlines.body_timeout_s
        )
        if seconds > 0:
            self._phase, self._payload = phase, payload
            self._timer = self._loop.call_later(seconds, self._expired)

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase, self._payload = None, None, None

    def _expired(self) -> None:
        phase, payload = self._phase, self._payload
        self._timer, self._phase, self._payload = None, None, None
        transport = self.transport
        if phase is None or transport is None or self._force_close:
            return
        if phase == "body" and payload is not None and payload.is_eof():
            return
        peer = transport.get_extra_info("peername")
        log.debug("closed a connection from %s: its %s took too long", peer, phase)
        self._deadlines.on_slow(phase)
        if phase == "headers" and not self._request_in_progress:
            # Nothing is being answered on this connection: say why it is closed.
            transport.write(TIMEOUT_RESPONSE)
        self.force_close()


class GuardedSite(web.TCPSite):
    """aiohttp's TCPSite, with DeadlineHandler as the protocol of each connection."""

    __slots__ = ("_deadlines",)

    def __init__(self, runner: web.BaseRunner, host: str, port: int, deadlines: Deadlines) -> None:
        super().__init__(runner, host, port)
        self._deadlines = deadlines

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers with the runner, which stops it
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        kwargs = dict(server._kwargs)  # the runner's handler arguments (keep-alive...)

        def connection() -> DeadlineHandler:
            return DeadlineHandler(server, self._deadlines, loop=loop, **kwargs)

        self._server = await loop.create_server(
            connection,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
