"""Caps on open connections to the public port: per client address and in total, counting
every request in progress and every open socket (agent, supervisor, web chat), so that one
client cannot hold thousands of sockets and the process keeps room for real customers.

The address is the client's as the web chat's per-minute limits see it: the peer, or, behind
a configured trusted proxy, the nearest X-Forwarded-For hop that is not one. A refusal is
never silent: an HTTP request gets 429 (its address is over) or 503 (the process is full)
with Retry-After; a websocket upgrade is accepted and closed at once with 1013 "try again
later", which browsers show to the page (a refused handshake reaches it as a bare error).
The counts are this process's: each process of a deployment has the same caps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from adapters.webchat.limits import Network, client_address

RETRY_AFTER_S = 5
CLOSE_TRY_AGAIN_LATER = 1013

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Called with "address" or "total" when a connection is refused (the metric).
OnRefused = Callable[[str], None]
OnCount = Callable[[int], None]

REASONS = {
    "address": (429, "too many connections from your address; try again later"),
    "total": (503, "the gateway has too many connections; try again later"),
}


class ConnectionCaps:
    """This process's open connections, by client address and in total; 0: no cap."""

    def __init__(
        self,
        total: int,
        per_address: int,
        proxies: list[Network],
        on_refused: OnRefused,
        on_count: OnCount,
    ) -> None:
        self.total, self.per_address, self.proxies = total, per_address, proxies
        self.on_refused, self.on_count = on_refused, on_count
        self.open = 0
        self.by_address: dict[str, int] = {}

    def acquire(self, address: str) -> str | None:
        """Count one more connection from ``address``; or the cap it would break."""
        if self.total and self.open >= self.total:
            return "total"
        held = self.by_address.get(address, 0)
        if self.per_address and held >= self.per_address:
            return "address"
        self.by_address[address] = held + 1
        self.open += 1
        self.on_count(self.open)
        return None

    def release(self, address: str) -> None:
        held = self.by_address.get(address, 0) - 1
        if held > 0:
            self.by_address[address] = held
        else:
            self.by_address.pop(address, None)
        self.open -= 1
        self.on_count(self.open)

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        @web.middleware
        async def connection_caps(request: web.Request, handler: Handler) -> web.StreamResponse:
            address = client_address(request, self.proxies)
            refused = self.acquire(address)
            if refused is not None:
                self.on_refused(refused)
                return await _refuse(request, refused)
            try:
                return await handler(request)
            finally:
                self.release(address)

        return connection_caps


async def _refuse(request: web.Request, scope: str) -> web.StreamResponse:
    status, reason = REASONS[scope]
    if request.headers.get("Upgrade", "").lower() == "websocket":
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=reason.encode())
        return ws
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return web.Response(status=status, text=reason + "\n", headers=headers)
