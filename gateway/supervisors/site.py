"""The supervisors' room on the public app: the /supervisor/ws route, and closing the open
supervisor sockets when the gateway shuts down."""

from __future__ import annotations

import contextlib

from aiohttp import WSCloseCode, web

from gateway.services import Services
from gateway.supervisors.socket import supervisor_socket

SUPERVISOR_WS = "/supervisor/ws"


def add_supervisor_routes(app: web.Application) -> None:
    app.router.add_get(SUPERVISOR_WS, supervisor_socket)


async def close_supervisor_sockets(services: Services) -> None:
    for ws in list(services.supervisor_sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"gateway going away")
    services.supervisor_sockets.clear()
