"""What each frame a customer sends does: hello (who they are, the conversation so far),
a message (checked, limited, stored through the host), a rating of a closed conversation.

A frame's failure is answered on its socket with a stable error code, never a traceback;
Redis away for a moment is the retryable code the page sends the frame again on.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from adapters import retryable
from adapters.contract import AdapterHost, Attachment, CustomerRef, Inbound, NotDurable
from adapters.retryable import redis_unavailable
from adapters.webchat import frames, prechat
from adapters.webchat.config import WebChatConfig
from adapters.webchat.limits import count_this_minute, this_minute
from adapters.webchat.session import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    Session,
    error,
    reply,
    send_raw,
)
from adapters.webchat.sockets import Sockets
from adapters.webchat.uploads import MAX_FILES_PER_MESSAGE, FileStore
from adapters.webchat.visitors import Visitors

log = logging.getLogger("zhongtai.webchat")

CLIENT_MSG_ID_MAX_CHARS = 128
# What a refused rating's error frame says, by the host's outcome.
CSAT_REFUSALS = {
    "not_asked": "this conversation is not waiting for your rating",
    "expired": "the time to rate this conversation is over",
    "already_rated": "you rated this conversation already",
}


class FrameHandler:
    def __init__(
        self,
        name: str,
        config: WebChatConfig,
        host: AdapterHost,
        visitors: Visitors,
        sockets: Sockets,
        files: FileStore,
    ) -> None:
        self._name, self._config, self._host = name, config, host
        self._visitors, self._sockets, self._files = visitors, sockets, files
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

    async def on_frame(self, session: Session, data: bytes) -> None:
        try:
            frame = frames.decode_client(data)
        except msgspec.DecodeError as exc:
            await reply(session.ws, frames.decode_error(exc))
            return
        try:
            if isinstance(frame, frames.Hello):
                await self._on_hello(session, frame)
            elif session.visitor_id is None:
                await reply(session.ws, error("hello_required", "send hello first", "type"))
            elif isinstance(frame, frames.SendMessage):
                await self._on_message(session, session.visitor_id, frame)
            elif isinstance(frame, frames.Rate):
                await self._on_rate(session, session.visitor_id, frame)
            # typing: accepted; the host has no way yet to show it to the agent.
        except NotDurable as exc:  # stored, not yet on a replica: the page sends it again
            cmid = getattr(frame, "client_msg_id", None)
            await reply(session.ws, error(exc.code, str(exc), None, cmid))
        except Exception as exc:
            cmid = getattr(frame, "client_msg_id", None)
            if redis_unavailable(exc):  # Redis loading or away a moment: send it again soon
                log.debug("webchat: %s frame: Redis unavailable: %s", type(frame).__name__, exc)
                await reply(session.ws, error(retryable.CODE, retryable.DETAIL, None, cmid))
                return
            # Never a traceback to the customer: log it, answer with a stable code.
            log.exception("webchat: %s frame failed", type(frame).__name__)
            detail = "something went wrong; try again"
            await reply(session.ws, error("internal", detail, None, cmid))

    async def _on_hello(self, session: Session, hello: frames.Hello) -> None:
        if session.visitor_id is not None:
            await reply(session.ws, error("already_hello", "hello was already received"))
            return
        if self._sockets.closing:
            await session.ws.close(code=CLOSE_GOING_AWAY, message=b"going away")
            return
        token = hello.visitor_token or ""
        visitor_id = await self._visitors.find(token)
        fresh = visitor_id is None
        if visitor_id is None:
            if not await self._new_visitor_allowed(session):
                detail = "too many new chats from your address; try again in a minute"
                self._host.limited("webchat.new_visitors_per_minute")
                await reply(session.ws, error("rate_limited", detail))
                await session.ws.close(code=CLOSE_POLICY, message=b"too many new visitors")
                return
            visitor_id, token = await self._visitors.create()
        # Attach before reading the conversation: a reply racing the welcome then arrives
        # twice (the page dedupes by message id) instead of not at all.
        if not self._sockets.attach(session, visitor_id, self._config.max_sockets_per_visitor):
            self._host.limited("webchat.max_sockets_per_visitor")
            await reply(session.ws, error("too_many_connections", "too many open chats"))
            await session.ws.close(code=CLOSE_POLICY, message=b"too many connections")
            return
        session.fresh_token = token if fresh else None
        try:
            await self._visitors.mark_node(visitor_id)
            conv = await self._host.open_conversation(self._name, self._config.account, visitor_id)
            if self._fields and not fresh:
                session.profile = await self._profiles.load(visitor_id)
        except BaseException:
            await self._sockets.detach(session)  # not welcomed: the client may say hello again
            session.visitor_id = None
            raise
        welcome = frames.Welcome(
            visitor_token=token,
            conversation_id=conv.id if conv else None,
            messages=conv.messages if conv else [],
            agent_name=conv.agent_name if conv else None,
            prechat=self._form if session.profile is None else None,
            uploads=self._limits,
            close_messages=dict(self._config.close_messages) or None,
        )
        await reply(session.ws, welcome)

    async def _on_message(self, session: Session, visitor_id: str, msg: frames.SendMessage) -> None:
        cmid = msg.client_msg_id
        problem = self._check_message(msg)
        if problem is None and not await self._message_allowed(session, visitor_id):
            self._host.limited("webchat.messages_per_minute")
            problem = error("rate_limited", "too many messages; slow down", None)
        profile: prechat.Profile | None = None
        attachments: list[Attachment] = []
        if problem is None:
            profile, problem = await self._profile_for(session, visitor_id, msg)
        if problem is None and msg.attachments:
            ids = [ref.id for ref in msg.attachments]
            found = await self._files.attachments(visitor_id, ids)
            if found is None:
                detail = "unknown or expired file; upload it again"
                problem = error("invalid", detail, "attachments")
            attachments = found or []
        if problem is not None:
            problem.client_msg_id = cmid
            await reply(session.ws, problem)
            return
        inbound = Inbound(
            channel=self._name,
            account=self._config.account,
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
        result = await self._host.ingest(inbound)
        echo = frames.encode(
            frames.MessageFrame(
                message=result.message,
                conversation_id=result.conversation_id,
                client_msg_id=cmid,
            )
        )
        await send_raw(session.ws, echo)
        # The message is stored; the other tabs and the queue position are a courtesy.
        try:
            await self._sockets.deliver(visitor_id, echo, skip=session.ws)
            if result.queue_position is not None:
                position = frames.QueueFrame(position=result.queue_position)
                await self._sockets.deliver(visitor_id, frames.encode(position))
        except Exception:
            log.warning("webchat: fan-out after ingest failed", exc_info=True)

    async def _on_rate(self, session: Session, visitor_id: str, rate: frames.Rate) -> None:
        """A rating of a closed conversation the visitor was asked about (csat_request)."""
        comment = (rate.comment or "").strip() or None
        if not rate.conversation_id.strip():
            problem = error("invalid", "name the conversation rated", "conversation_id")
            await reply(session.ws, problem)
            return
        if comment is not None and len(comment) > self._config.max_text_chars:
            detail = f"at most {self._config.max_text_chars} characters"
            await reply(session.ws, error("too_long", detail, "comment"))
            return
        answer = await self._host.rate(
            self._name, self._config.account, visitor_id, rate.conversation_id, rate.score, comment
        )
        if answer.outcome != "ok":
            detail = CSAT_REFUSALS[answer.outcome]
            await reply(session.ws, error(answer.outcome, detail, "conversation_id"))
            return
        thanks = frames.CsatThanks(conversation_id=rate.conversation_id, score=rate.score)
        await self._sockets.deliver(visitor_id, frames.encode(thanks))

    async def _profile_for(
        self, session: Session, visitor_id: str, msg: frames.SendMessage
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
            return error("invalid", "text is empty", "text")
        if len(msg.attachments) > MAX_FILES_PER_MESSAGE:
            detail = f"at most {MAX_FILES_PER_MESSAGE} files a message"
            return error("invalid", detail, "attachments")
        if len(text) > self._config.max_text_chars:
            return error("too_long", f"at most {self._config.max_text_chars} characters", "text")
        cmid = msg.client_msg_id
        if cmid is not None and not 0 < len(cmid) <= CLIENT_MSG_ID_MAX_CHARS:
            detail = f"1 to {CLIENT_MSG_ID_MAX_CHARS} characters"
            return error("invalid", detail, "client_msg_id")
        return None

    async def _message_allowed(self, session: Session, visitor_id: str) -> bool:
        """Within the socket's burst, then within the visitor's minute across all sockets."""
        per_minute = self._config.messages_per_minute
        if not per_minute or not session.bucket.take():
            return not per_minute
        key = self._visitors.messages_key(visitor_id, this_minute())
        return await count_this_minute(self._host.redis, key) <= per_minute

    async def _new_visitor_allowed(self, session: Session) -> bool:
        per_minute = self._config.new_visitors_per_minute
        if not per_minute:
            return True
        key = self._visitors.address_key(session.address, this_minute())
        return await count_this_minute(self._host.redis, key) <= per_minute
