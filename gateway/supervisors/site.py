"""The supervisors' room on the public app: the /supervisor/ws route, the relay between
processes (relay.py) as a task the app owns, and closing the open supervisor sockets when
the gateway shuts down."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from gateway.services import SERVICES, Services
from gateway.supervisors.relay import Relay
from gateway.supervisors.socket import supervisor_socket
from gateway.supervisors.wallboard import WALLBOARD_READS, SharedReads

SUPERVISOR_WS = "/supervisor/ws"


def add_supervisor_routes(app: web.Application) -> None:
    app[WALLBOARD_READS] = SharedReads(app[SERVICES])
    app.router.add_get(SUPERVISOR_WS, supervisor_socket)


async def close_supervisor_sockets(services: Services) -> None:
    for ws in list(services.supervisor_sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway going away")
    services.supervisor_sockets.clear()


async def supervisor_relay(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context after the core's: the node bus and the switchboard exist."""
    s = app[SERVICES]
    interval_s = s.config.core.supervisor.wallboard_min_interval_ms / 1000
    relay = Relay(s.switchboard.tap, s.bus, s.presence.keys.nodes, interval_s)
    task = asyncio.create_task(relay.run(), name="supervisor-relay")
    try:
        yield
    finally:
        s.switchboard.tap.remote = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
