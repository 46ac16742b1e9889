"""A client library for agents' programs: the agent websocket protocol v1 over `websockets`.

    async with AgentClient("ws://127.0.0.1:8080/agent/ws", token) as client:
        async for frame in client.frames():
            match frame:
                case Offer():
                    await client.accept(frame.offer_id)
                case MessageFrame():
                    await client.reply(frame.conversation_id, "On it!")

The client reconnects by itself, with exponential backoff and jitter, and yields the server's
`Welcome` again after every reconnect so that the program can resync its open conversations.
What one connection does is in link.py; this module keeps connections coming and hands their
frames to the program. docs/protocol.md describes the protocol; the library only speaks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TypeVar, cast

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.uri import parse_uri

from gateway.agents.protocol import (
    Accept,
    AddNote,
    Attachment,
    CannedReply,
    Close,
    Decline,
    Frame,
    HistoryRequest,
    Reply,
    ServerFrame,
    SetStatus,
    Transfer,
    Welcome,
    encode,
)
from gateway.client.errors import (
    AgentClientError,
    AuthenticationFailed,
    ConnectionLost,
    NotConnected,
    ProtocolMismatch,
    Replaced,
)
from gateway.client.link import describe_close, run_link

__all__ = [
    "AgentClient",
    "AgentClientError",
    "AuthenticationFailed",
    "ConnectionLost",
    "Disconnected",
    "NotConnected",
    "ProtocolMismatch",
    "Replaced",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 8 * 2**20
"""Frames the client accepts; a welcome lists every open conversation with recent messages."""

F = TypeVar("F")


class Disconnected(msgspec.Struct, kw_only=True):
    """Yielded by `AgentClient.frames()` when a connection (or a reconnect attempt) failed.

    Not a protocol frame: the client makes it so that programs see, in order with the frames,
    that replies cannot be sent until the next `Welcome`.
    """

    code: int | None
    reason: str
    retry_in_s: float
    attempt: int


_END = object()  # marks the end of the inbox; put back after reading so every reader sees it

Item = ServerFrame | Disconnected | object


class AgentClient:
    """One agent's connection to the gateway, kept up across drops.

    Use it as an async context manager (or call `connect()` and `aclose()`). Frames arrive
    through `frames()` or `wait_for()`, which read the same buffered stream.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        reconnect: bool = True,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_size: int | None = DEFAULT_MAX_SIZE,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
    ) -> None:
        parse_uri(url)  # a malformed URL fails here, not on the first connect
        self.url = url
        self._token = token
        self.reconnect = reconnect
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_size = max_size
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.welcome: Welcome | None = None
        """The latest welcome: who the agent is and their open conversations."""
        self._ws: ClientConnection | None = None
        self._inbox: asyncio.Queue[Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[Welcome] | None = None
        self._failure: AgentClientError | None = None
        self._closing = False
        self._finished = False

    # Lifecycle.

    async def __aenter__(self) -> AgentClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def connect(self) -> Welcome:
        """Connect and return the first welcome (which `frames()` also yields).

        A failed first attempt raises (`AuthenticationFailed`, `ProtocolMismatch`,
        `ConnectionLost`) rather than retrying, so that a wrong URL or token shows at once.
        """
        if self._task is not None or self._closing:
            raise RuntimeError("an AgentClient connects once; make a new one to reconnect")
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"zhongtai-agent-client {self.url}")
        try:
            # Shielded: a caller cancelled while waiting must not cancel the run's future.
            return await asyncio.shield(self._first)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the connection and stop reconnecting; `frames()` then ends."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._finish(None)

    @property
    def connected(self) -> bool:
        """True between a welcome and the end of that connection."""
        return self._ws is not None

    @property
    def canned_replies(self) -> list[CannedReply]:
        """The canned replies of the latest welcome (fill them in with `expand_canned`)."""
        return list(self.welcome.canned_replies) if self.welcome else []

    @property
    def close_reasons(self) -> list[str]:
        """The reasons `close()` may give; empty: any reason, or none."""
        return list(self.welcome.close_reasons) if self.welcome else []

    def canned_for(self, queue: str) -> list[CannedReply]:
        """The canned replies offered in a conversation of this queue."""
        return [c for c in self.canned_replies if not c.queues or queue in c.queues]

    # Receiving.

    async def frames(self) -> AsyncIterator[ServerFrame | Disconnected]:
        """Server frames, across reconnects, until the client closes or fails for good.

        Ends quietly after `aclose()`; raises `AuthenticationFailed`, `Replaced`,
        `ProtocolMismatch` or `ConnectionLost` when the connection ended for good.
        """
        while True:
            item = await self._next()
            if item is _END:
                if self._failure is not None:
                    raise self._failure
                return
            yield cast("ServerFrame | Disconnected", item)

    async def wait_for(
        self,
        frame_type: type[F] | tuple[type[F], ...],
        predicate: Callable[[F], bool] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - the call reads better in tests with it
    ) -> F:
        """The next frame of `frame_type` (that `predicate` accepts), like expect(1).

        Frames before the match are consumed and dropped, so that an earlier frame of the
        same type (a previous welcome, say) never answers a later wait. Raises TimeoutError.
        """
        async with asyncio.timeout(timeout):
            while True:
                item = await self._next()
                if item is _END:
                    raise self._failure or NotConnected("the client is closed")
                if isinstance(item, frame_type) and (predicate is None or predicate(item)):
                    return item

    async def _next(self) -> Item:
        item = await self._inbox.get()
        if item is _END:
            self._inbox.put_nowait(_END)
        return item

    # Sending.

    async def send(self, frame: Frame) -> None:
        """Send any client frame; raises `NotConnected` when no connection is up.

        Nothing is queued for later: after a reconnect the program decides what to resend
        (replies are idempotent on client_msg_id, so resending one is safe).
        """
        ws = self._ws
        if ws is None:
            raise NotConnected("not connected to the gateway")
        try:
            await ws.send(encode(frame), text=True)
        except ConnectionClosed as exc:
            raise NotConnected(f"connection lost: {describe_close(exc)}") from exc

    async def accept(self, offer_id: str) -> None:
        await self.send(Accept(offer_id=offer_id))

    async def decline(self, offer_id: str, reason: str | None = None) -> None:
        await self.send(Decline(offer_id=offer_id, reason=reason))

    async def reply(
        self,
        conversation_id: str,
        text: str,
        client_msg_id: str | None = None,
        attachments: list[Attachment] | None = None,
    ) -> str:
        """Send a reply and return its client_msg_id, which the reply_ack (or error) carries."""
        client_msg_id = client_msg_id or uuid.uuid4().hex
        await self.send(
            Reply(
                conversation_id=conversation_id,
                text=text,
                client_msg_id=client_msg_id,
                attachments=attachments or [],
            )
        )
        return client_msg_id

    async def close(self, conversation_id: str, reason: str | None = None) -> None:
        """Close a conversation (the `close` frame), with one of `close_reasons` when the
        gateway lists any. To close the client, use `aclose()`."""
        await self.send(Close(conversation_id=conversation_id, reason=reason))

    async def note(self, conversation_id: str, text: str) -> None:
        """Add an internal note (never sent to the customer); the gateway answers with a
        `NoteAdded` frame, or an `Error` naming the field."""
        await self.send(AddNote(conversation_id=conversation_id, text=text))

    async def history(self, conversation_id: str) -> None:
        """Ask for the customer's earlier conversations; they arrive as a `History` frame
        for this conversation_id among the others (``wait_for(History, ...)`` to wait)."""
        await self.send(HistoryRequest(conversation_id=conversation_id))

    async def set_status(self, status: str) -> None:
        await self.send(SetStatus(status=status))

    async def transfer(
        self,
        conversation_id: str,
        *,
        to_agent: str | None = None,
        to_queue: str | None = None,
        note: str | None = None,
    ) -> None:
        await self.send(
            Transfer(
                conversation_id=conversation_id, to_agent=to_agent, to_queue=to_queue, note=note
            )
        )

    # The connection loop.

    async def _run(self) -> None:
        failures = 0
        try:
            while True:
                drop = await run_link(
                    self.url,
                    self._token,
                    max_size=self.max_size,
                    open_timeout_s=self.open_timeout_s,
                    ping_interval_s=self.ping_interval_s,
                    on_welcome=self._welcomed,
                    on_frame=self._received,
                    on_down=self._down,
                )
                if self._closing:
                    return
                if self.welcome is None:
                    raise ConnectionLost(
                        f"cannot connect to {self.url}: {drop.reason}", drop.code, drop.reason
                    ) from drop.error
                if not self.reconnect:
                    raise ConnectionLost(
                        f"connection lost: {drop.reason}", drop.code, drop.reason
                    ) from drop.error
                if drop.welcomed:
                    failures = 0  # the connection had been up: start the backoff afresh
                delay = self._backoff(failures)
                failures += 1
                self._inbox.put_nowait(
                    Disconnected(
                        code=drop.code, reason=drop.reason, retry_in_s=delay, attempt=failures
                    )
                )
                log.info("agent connection lost (%s); reconnecting in %.1fs", drop.reason, delay)
                await asyncio.sleep(delay)
        except AgentClientError as exc:
            self._finish(exc)
        except Exception as exc:  # a bug here must not leave readers waiting forever
            log.exception("agent client failed")
            self._finish(ConnectionLost(f"agent client failed: {exc!r}"))
        else:
            self._finish(None)

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2**failures)
        # Jitter spreads the reconnects of every agent after a gateway restart.
        return random.uniform(ceiling / 2, ceiling)

    def _finish(self, failure: AgentClientError | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._failure = failure
        self._inbox.put_nowait(_END)
        first = self._first
        if first is not None and not first.done():
            first.set_exception(failure or NotConnected("the client was closed"))
            first.exception()  # connect() may be gone; mark the exception retrieved

    def _welcomed(self, ws: ClientConnection, welcome: Welcome) -> None:
        self._ws = ws
        self.welcome = welcome
        self._inbox.put_nowait(welcome)
        if self._first is not None and not self._first.done():
            self._first.set_result(welcome)

    def _received(self, frame: ServerFrame) -> None:
        if isinstance(frame, Welcome):  # a resync on the same connection: the new authority
            self.welcome = frame
        self._inbox.put_nowait(frame)

    def _down(self) -> None:
        self._ws = None
