"""The web chat channel: a customer websocket at ``/webchat/ws`` and a page at ``/webchat/``.

A visitor is known by an unguessable token (see visitors.py). Each process keeps its own
sockets; Redis records which processes hold sockets of a visitor, and replies travel there
through ``host.send_to_node``. The pre-chat form is in prechat.py, file uploads in uploads.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import aiohttp
import msgspec
from aiohttp import web
from redis.exceptions import RedisError

from adapters import retryable
from adapters.contract import (
    Adapter,
    AdapterHost,
    Attachment,
    ConversationEvent,
    CsatMode,
    CustomerRef,
    DeliveryError,
    Inbound,
    NotDurable,
    Outbound,
    StoredMessage,
    utc_now,
)
from adapters.retryable import redis_unavailable
from adapters.webchat import frames, prechat
from adapters.webchat.config import WebChatConfig
from adapters.webchat.limits import client_address, count_this_minute, networks, this_minute
from adapters.webchat.uploads import MAX_FILES_PER_MESSAGE, FileStore, UploadRoutes
from adapters.webchat.visitors import Visitors

log = logging.getLogger("zhongtai.webchat")

STATIC_DIR = Path(__file__).parent / "static"
TOPIC = "webchat"
CLIENT_MSG_ID_MAX_CHARS = 128
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_HELLO_TIMEOUT = 4408
# How long close() waits for the browser's close reply before dropping the connection.
CLOSE_TIMEOUT_S = 5.0
# The reason told to the customer when the gateway gives none.
DEFAULT_CLOSE_REASON = "closed"
# What a refused rating's error frame says, by the host's outcome.
CSAT_REFUSALS = {
    "not_asked": "this conversation is not waiting for your rating",
    "expired": "the time to rate this conversation is over",
    "already_rated": "you rated this conversation already",
}
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        "frame-ancestors 'self'"
    ),
}


@dataclasses.dataclass(eq=False)
class _Session:
    """One customer socket."""

    ws: web.WebSocketResponse
    visitor_id: str | None = None
    # The token of a visitor made by this socket's hello, until their first message.
    fresh_token: str | None = None
    # Who is at the other end (limits.client_address), for the per-address limit.
    address: str = "unknown"
    # Token bucket for messages_per_minute.
    allowance: float = 10.0
    checked_at: float = dataclasses.field(default_factory=time.monotonic)
    # The visitor's pre-chat answers, once known (read at hello, saved with a message).
    profile: prechat.Profile | None = None


class WebChatAdapter(Adapter[WebChatConfig]):
    name: ClassVar[str] = "webchat"
    csat: ClassVar[CsatMode | None] = "frames"
    Config: ClassVar[type[msgspec.Struct]] = WebChatConfig

    def __init__(self, config: WebChatConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        # Sockets past hello, by visitor; and every open socket, hello or not.
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._open: set[web.WebSocketResponse] = set()
        self._closing = False
        self._origins = {o.rstrip("/").lower() for o in config.allowed_origins}
        self._burst = float(min(config.messages_per_minute, 10))
        self._proxies = networks(config.trusted_proxies)
        visitors = self._visitors = Visitors(host, self.name, config.visitor_ttl_s)
        self._fields = config.prechat_fields
        self._profiles = prechat.ProfileStore(
            host, visitors.profile_key, self._fields, config.visitor_ttl_s
        )
        # What welcome tells the page: the form to fill (None: no form) and the upload limits.
        self._form = prechat.specs(self._fields) or None
        uploads = config.uploads
        self._limits = (
            frames.UploadLimits(max_bytes=uploads.max_bytes, types=uploads.types)
            if uploads.enabled
            else None
        )
        ttl, prefix = uploads.ttl_s, f"/{self.name}/"
        self._files = FileStore(host, visitors.file_key, ttl, prefix)
        self._uploads = UploadRoutes(config.uploads, self._files, visitors, self._origin_allowed)

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
        self.host.on_node_message(TOPIC, self._on_node_message)

    async def ready(self) -> bool:
        return not self._closing

    def open_connections(self) -> int:
        return len(self._open)

    async def aclose(self) -> None:
        self._closing = True
        # Stop other processes routing here before the sockets go.
        try:
            pipe = self.host.redis.pipeline(transaction=False)
            for vid in self._sockets:
                pipe.srem(self._visitors.nodes_key(vid), self.host.node_id)
            await pipe.execute()
        except Exception:
            log.warning("webchat: could not unregister visitors at shutdown", exc_info=True)
        await asyncio.gather(
            *(ws.close(code=CLOSE_GOING_AWAY, message=b"going away") for ws in list(self._open)),
            return_exceptions=True,
        )

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
        await self._deliver(outbound.customer.id, frames.encode(frame))

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
        await self._deliver(event.customer.id, frames.encode(frame))

    async def _deliver(
        self, visitor_id: str, buf: bytes, skip: web.WebSocketResponse | None = None
    ) -> None:
        """Send a frame to every socket of the visitor (but skip), on whichever processes
        hold them. Nobody connected is fine: the host has stored the message, and welcome
        shows it when the visitor comes back."""
        try:
            nodes = await self._visitors.nodes(visitor_id)
        except (RedisError, OSError) as exc:
            detail = f"visitor lookup failed: {exc}"
            raise DeliveryError("unavailable", detail, retryable=True) from exc
        await self._fan_out(visitor_id, buf, skip)
        payload = frames.encode_node(frames.NodeDelivery(visitor_id, buf))
        remote = nodes - {self.host.node_id}
        results = await asyncio.gather(
            *(self.host.send_to_node(node, TOPIC, payload) for node in remote),
            return_exceptions=True,
        )
        for node, result in zip(remote, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("webchat: delivery to node %s failed: %r", node, result)

    async def _on_node_message(self, payload: bytes) -> None:
        try:
            delivery = frames.node_decoder.decode(payload)
        except msgspec.DecodeError:
            log.warning("webchat: undecodable node payload (%d bytes)", len(payload))
            return
        await self._fan_out(delivery.visitor_id, delivery.frame)

    async def _fan_out(
        self, visitor_id: str, buf: bytes, skip: web.WebSocketResponse | None = None
    ) -> None:
        targets = [ws for ws in self._sockets.get(visitor_id, ()) if ws is not skip]
        await asyncio.gather(*(_send_raw(ws, buf) for ws in targets))

    # The customer socket.

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        if self._closing:
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
        address = client_address(request, self._proxies)
        session = _Session(ws, allowance=self._burst, address=address)
        self._open.add(ws)
        try:
            await self._serve(session)
        finally:
            self._open.discard(ws)
            await self._detach(session)
        return ws

    def _origin_allowed(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if not self._origins or origin is None:
            return True
        origin = origin.rstrip("/").lower()
        return origin in self._origins or urlsplit(origin).netloc == request.host.lower()

    async def _serve(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.hello_timeout_s
        while not session.ws.closed:
            timeout = None
            if session.visitor_id is None and self.config.hello_timeout_s:
                timeout = deadline - loop.time()
                if timeout <= 0:
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
            await self._on_frame(session, msg.data)

    async def _on_frame(self, session: _Session, data: bytes) -> None:
        try:
            frame = frames.decode_client(data)
        except msgspec.DecodeError as exc:
            await _reply(session.ws, frames.decode_error(exc))
            return
        try:
            if isinstance(frame, frames.Hello):
                await self._on_hello(session, frame)
            elif session.visitor_id is None:
                await _reply(session.ws, _error("hello_required", "send hello first", "type"))
            elif isinstance(frame, frames.SendMessage):
                await self._on_message(session, session.visitor_id, frame)
            elif isinstance(frame, frames.Rate):
                await self._on_rate(session, session.visitor_id, frame)
            # typing: accepted; the host has no way yet to show it to the agent.
        except NotDurable as exc:  # stored, not yet on a replica: the page sends it again
            cmid = getattr(frame, "client_msg_id", None)
            await _reply(session.ws, _error(exc.code, str(exc), None, cmid))
        except Exception as exc:
            cmid = getattr(frame, "client_msg_id", None)
            if redis_unavailable(exc):  # Redis loading or away a moment: send it again soon
                log.debug("webchat: %s frame: Redis unavailable: %s", type(frame).__name__, exc)
                await _reply(session.ws, _error(retryable.CODE, retryable.DETAIL, None, cmid))
                return
            # Never a traceback to the customer: log it, answer with a stable code.
            log.exception("webchat: %s frame failed", type(frame).__name__)
            await _reply(
                session.ws, _error("internal", "something went wrong; try again", None, cmid)
            )

    async def _on_hello(self, session: _Session, hello: frames.Hello) -> None:
        if session.visitor_id is not None:
            await _reply(session.ws, _error("already_hello", "hello was already received"))
            return
        if self._closing:
            await session.ws.close(code=CLOSE_GOING_AWAY, message=b"going away")
            return
        token = hello.visitor_token or ""
        visitor_id = await self._visitors.find(token)
        fresh = visitor_id is None
        if visitor_id is None:
            if not await self._new_visitor_allowed(session):
                detail = "too many new chats from your address; try again in a minute"
                await _reply(session.ws, _error("rate_limited", detail))
                await session.ws.close(code=CLOSE_POLICY, message=b"too many new visitors")
                return
            visitor_id, token = await self._visitors.create()
        local = self._sockets.setdefault(visitor_id, set())
        if len(local) >= self.config.max_sockets_per_visitor:
            await _reply(session.ws, _error("too_many_connections", "too many open chats"))
            await session.ws.close(code=CLOSE_POLICY, message=b"too many connections")
            return
        # Attach before reading the conversation: a reply racing the welcome then arrives
        # twice (the page dedupes by message id) instead of not at all.
        local.add(session.ws)
        session.visitor_id = visitor_id
        session.fresh_token = token if fresh else None
        try:
            await self._visitors.mark_node(visitor_id)
            conv = await self.host.open_conversation(self.name, self.config.account, visitor_id)
            if self._fields and not fresh:
                session.profile = await self._profiles.load(visitor_id)
        except BaseException:
            await self._detach(session)  # not welcomed: the client may say hello again
            session.visitor_id = None
            raise
        welcome = frames.Welcome(
            visitor_token=token,
            conversation_id=conv.id if conv else None,
            messages=conv.messages if conv else [],
            agent_name=conv.agent_name if conv else None,
            prechat=self._form if session.profile is None else None,
            uploads=self._limits,
            close_messages=dict(self.config.close_messages) or None,
        )
        await _reply(session.ws, welcome)

    async def _on_message(
        self, session: _Session, visitor_id: str, msg: frames.SendMessage
    ) -> None:
        cmid = msg.client_msg_id
        problem = self._check_message(msg)
        if problem is None and not await self._message_allowed(session, visitor_id):
            problem = _error("rate_limited", "too many messages; slow down", None)
        profile: prechat.Profile | None = None
        attachments: list[Attachment] = []
        if problem is None:
            profile, problem = await self._profile_for(session, visitor_id, msg)
        if problem is None and msg.attachments:
            ids = [ref.id for ref in msg.attachments]
            found = await self._files.attachments(visitor_id, ids)
            if found is None:
                detail = "unknown or expired file; upload it again"
                problem = _error("invalid", detail, "attachments")
            attachments = found or []
        if problem is not None:
            problem.client_msg_id = cmid
            await _reply(session.ws, problem)
            return
        inbound = Inbound(
            channel=self.name,
            account=self.config.account,
            # Scoped to the visitor: dedupe is per channel and account, and one visitor's
            # client_msg_id must never swallow another visitor's message.
            external_id=f"{visitor_id}:{cmid or uuid.uuid4().hex}",
            customer=CustomerRef(id=visitor_id, name=profile.customer_name if profile else None),
            text=msg.text.strip(),
            attachments=attachments,
            # On every message, so the one that opens a conversation (this one, or the first
            # after a close) shows the agent who is writing.
            metadata=profile.metadata() if profile else {},
        )
        if session.fresh_token is not None:
            await self._visitors.remember(session.fresh_token)
            session.fresh_token = None
        result = await self.host.ingest(inbound)
        echo = frames.encode(
            frames.MessageFrame(
                message=result.message,
                conversation_id=result.conversation_id,
                client_msg_id=cmid,
            )
        )
        await _send_raw(session.ws, echo)
        # The message is stored; the other tabs and the queue position are a courtesy.
        try:
            await self._deliver(visitor_id, echo, skip=session.ws)
            if result.queue_position is not None:
                await self._deliver(
                    visitor_id, frames.encode(frames.QueueFrame(position=result.queue_position))
                )
        except Exception:
            log.warning("webchat: fan-out after ingest failed", exc_info=True)

    async def _on_rate(self, session: _Session, visitor_id: str, rate: frames.Rate) -> None:
        """A rating of a closed conversation the visitor was asked about (csat_request)."""
        comment = (rate.comment or "").strip() or None
        if not rate.conversation_id.strip():
            problem = _error("invalid", "name the conversation rated", "conversation_id")
            await _reply(session.ws, problem)
            return
        if comment is not None and len(comment) > self.config.max_text_chars:
            detail = f"at most {self.config.max_text_chars} characters"
            await _reply(session.ws, _error("too_long", detail, "comment"))
            return
        answer = await self.host.rate(
            self.name, self.config.account, visitor_id, rate.conversation_id, rate.score, comment
        )
        if answer.outcome != "ok":
            detail = CSAT_REFUSALS[answer.outcome]
            await _reply(session.ws, _error(answer.outcome, detail, "conversation_id"))
            return
        thanks = frames.CsatThanks(conversation_id=rate.conversation_id, score=rate.score)
        await self._deliver(visitor_id, frames.encode(thanks))

    async def _profile_for(
        self, session: _Session, visitor_id: str, msg: frames.SendMessage
    ) -> tuple[prechat.Profile | None, frames.ErrorFrame | None]:
        """The visitor's pre-chat answers for this message: those it carries (checked, then
        kept), else those given before; or the error naming a required field missing."""
        if not self._fields:
            return None, None
        if msg.prechat is not None:
            values, problem = prechat.check(self._fields, msg.prechat)
            if problem is not None:
                return None, problem
            session.profile = await self._profiles.save(visitor_id, values)
        elif session.profile is None:
            # Another tab may have filled the form since this one said hello.
            session.profile = await self._profiles.load(visitor_id)
        if session.profile is None:
            return None, prechat.missing(self._fields, None)
        return session.profile, None

    def _check_message(self, msg: frames.SendMessage) -> frames.ErrorFrame | None:
        text = msg.text.strip()
        if not text and not msg.attachments:
            return _error("invalid", "text is empty", "text")
        if len(msg.attachments) > MAX_FILES_PER_MESSAGE:
            detail = f"at most {MAX_FILES_PER_MESSAGE} files a message"
            return _error("invalid", detail, "attachments")
        if len(text) > self.config.max_text_chars:
            return _error("too_long", f"at most {self.config.max_text_chars} characters", "text")
        cmid = msg.client_msg_id
        if cmid is not None and not 0 < len(cmid) <= CLIENT_MSG_ID_MAX_CHARS:
            detail = f"1 to {CLIENT_MSG_ID_MAX_CHARS} characters"
            return _error("invalid", detail, "client_msg_id")
        return None

    async def _message_allowed(self, session: _Session, visitor_id: str) -> bool:
        """Within the socket's burst, then within the visitor's minute across all sockets."""
        per_minute = self.config.messages_per_minute
        if not per_minute or not self._take_allowance(session):
            return not per_minute
        key = self._visitors.messages_key(visitor_id, this_minute())
        return await count_this_minute(self.host.redis, key) <= per_minute

    async def _new_visitor_allowed(self, session: _Session) -> bool:
        per_minute = self.config.new_visitors_per_minute
        if not per_minute:
            return True
        key = self._visitors.address_key(session.address, this_minute())
        return await count_this_minute(self.host.redis, key) <= per_minute

    def _take_allowance(self, session: _Session) -> bool:
        per_minute = self.config.messages_per_minute
        if not per_minute:
            return True
        now = time.monotonic()
        refill = (now - session.checked_at) * per_minute / 60.0
        session.allowance = min(self._burst, session.allowance + refill)
        session.checked_at = now
        if session.allowance < 1.0:
            return False
        session.allowance -= 1.0
        return True

    async def _detach(self, session: _Session) -> None:
        visitor_id = session.visitor_id
        if visitor_id is None:
            return
        local = self._sockets.get(visitor_id)
        if local is None:
            return
        local.discard(session.ws)
        if local:
            return
        del self._sockets[visitor_id]
        try:
            await self._visitors.unmark_node(visitor_id)
            if visitor_id in self._sockets:
                # A new tab attached while the SREM was in flight and may have lost the race.
                await self._visitors.mark_node(visitor_id)
        except Exception:
            log.warning("webchat: could not unregister visitor socket", exc_info=True)


def _error(
    code: str, detail: str, field: str | None = None, client_msg_id: str | None = None
) -> frames.ErrorFrame:
    return frames.ErrorFrame(code=code, detail=detail, field=field, client_msg_id=client_msg_id)


async def _reply(ws: web.WebSocketResponse, frame: frames.Frame) -> None:
    await _send_raw(ws, frames.encode(frame))


async def _send_raw(ws: web.WebSocketResponse, buf: bytes) -> None:
    if ws.closed:
        return
    try:
        await ws.send_frame(buf, aiohttp.WSMsgType.TEXT)
    except ConnectionError:
        pass  # the socket went away meanwhile; its handler cleans up
