"""The web chat channel: a customer websocket at ``/webchat/ws`` and a page at ``/webchat/``.

A visitor is known by an unguessable token (see visitors.py). This module is the adapter's
face to the host: its routes, its lifecycle, and what leaves for the customer (replies and
conversation events). The process's sockets and delivery to them are in sockets.py, what
each customer frame does in handlers.py, the pre-chat form in prechat.py, file uploads in
uploads.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import web

from adapters.contract import (
    Adapter,
    AdapterHost,
    ConversationEvent,
    CsatMode,
    Outbound,
    StoredMessage,
    utc_now,
)
from adapters.webchat import frames
from adapters.webchat.config import WebChatConfig
from adapters.webchat.handlers import FrameHandler
from adapters.webchat.limits import TokenBucket, client_address, networks
from adapters.webchat.session import CLOSE_HELLO_TIMEOUT, Session
from adapters.webchat.sockets import Sockets
from adapters.webchat.uploads import FileStore, UploadRoutes
from adapters.webchat.visitors import Visitors

STATIC_DIR = Path(__file__).parent / "static"
TOPIC = "webchat"
# How long close() waits for the browser's close reply before dropping the connection.
CLOSE_TIMEOUT_S = 5.0
# The reason told to the customer when the gateway gives none.
DEFAULT_CLOSE_REASON = "closed"
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "frame-ancestors 'self'"
    ),
}


class WebChatAdapter(Adapter[WebChatConfig]):
    name: ClassVar[str] = "webchat"
    csat: ClassVar[CsatMode | None] = "frames"
    Config: ClassVar[type[msgspec.Struct]] = WebChatConfig

    def __init__(self, config: WebChatConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        self._origins = {o.rstrip("/").lower() for o in config.allowed_origins}
        proxies = config.trusted_proxies
        self._proxies = networks(host.trusted_proxies if proxies is None else proxies)
        visitors = Visitors(host, self.name, config.visitor_ttl_s)
        self._sockets = Sockets(host, visitors, TOPIC)
        files = FileStore(host, visitors.file_key, config.uploads.ttl_s, f"/{self.name}/")
        self._uploads = UploadRoutes(config.uploads, files, visitors, self._origin_allowed)
        self._handler = FrameHandler(self.name, config, host, visitors, self._sockets, files)

    # Lifecycle.

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self._handle_socket)
        self._uploads.add_to(app)
        if self.config.serve_page:
            app.router.add_get("/", self._page)
            app.router.add_static("/static/", STATIC_DIR)
        return app

    async def start(self) -> None:
        self.host.on_node_message(TOPIC, self._sockets.on_node_message)

    async def ready(self) -> bool:
        return not self._sockets.closing

    def open_connections(self) -> int:
        return len(self._sockets.open)

    async def aclose(self) -> None:
        await self._sockets.close_all()

    # Outbound.

    async def send(self, outbound: Outbound) -> None:
        message = StoredMessage(
            id=outbound.message_id,
            direction="out",
            text=outbound.text,
            sent_at=utc_now(),
            attachments=outbound.attachments,
            author=outbound.agent_name,
        )
        frame = frames.MessageFrame(message=message, conversation_id=outbound.conversation_id)
        await self._sockets.deliver(outbound.customer.id, frames.encode(frame))

    async def notify(self, event: ConversationEvent) -> None:
        frame: frames.Frame
        if event.kind == "queued":
            if event.position is None:
                return
            frame = frames.QueueFrame(position=event.position, eta_s=event.eta_s)
        elif event.kind == "agent_joined":
            frame = frames.AgentFrame(name=event.agent_name or "An agent")
        elif event.kind == "agent_left":
            frame = frames.AgentLeftFrame(reason=event.reason or "agent_gone")
        elif event.kind == "csat_request":
            scale = event.scale or frames.CSAT_SCALE
            frame = frames.CsatRequest(conversation_id=event.conversation_id, scale=scale)
        else:
            frame = frames.ClosedFrame(reason=event.reason or DEFAULT_CLOSE_REASON)
        await self._sockets.deliver(event.customer.id, frames.encode(frame))

    # The customer socket.

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._sockets.closing:
            raise web.HTTPServiceUnavailable(text="going away")
        if not self._origin_allowed(request):
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(
            heartbeat=self.config.heartbeat_s or None,
            max_msg_size=self.config.max_frame_bytes,
            decode_text=False,
            timeout=CLOSE_TIMEOUT_S,
        )
        await ws.prepare(request)
        bucket = TokenBucket(self.config.messages_per_minute)
        session = Session(ws, bucket, address=client_address(request, self._proxies))
        self._sockets.open.add(ws)
        try:
            await self._serve(session)
        finally:
            self._sockets.open.discard(ws)
            await self._sockets.detach(session)
        return ws

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if not self._origins or origin is None:
            return True
        origin = origin.rstrip("/").lower()
        return origin in self._origins or urlsplit(origin).netloc == request.host.lower()

    async def _serve(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.hello_timeout_s
        while not session.ws.closed:
            timeout = None
            if session.visitor_id is None and self.config.hello_timeout_s:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    self.host.limited("webchat.hello_timeout_s")
                    await session.ws.close(code=CLOSE_HELLO_TIMEOUT, message=b"hello timeout")
                    return
            try:
                # Our own deadline: aiohttp's receive(timeout=) restarts on every pong it
                # absorbs, so a socket answering heartbeats would never reach its hello timeout.
                async with asyncio.timeout(timeout):
                    msg = await session.ws.receive()
            except TimeoutError:
                continue
            if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return  # closed, or an error such as a frame too big (aiohttp sent 1009)
            await self._handler.on_frame(session, msg.data)
