"""One supervisor socket: its frames go out through one queue and one writer task, so that
the change tap's callbacks (called inside the flows, which must never wait on a lead's
socket) only put a frame in a queue; and its wallboard loop, which rebuilds the wallboard
when the tap wakes it, at most once per [supervisor] wallboard_min_interval_ms, and every
REFRESH_S anyway so that waiting times advance."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from adapters.loops import Outage
from adapters.model import Message
from gateway.services import Services
from gateway.supervisors.protocol import Closed, DeadlineAlert, Frame, MessageFrame, encode
from gateway.supervisors.scope import Scope
from gateway.supervisors.wallboard import SharedReads, StatusSince, build_wallboard

log = logging.getLogger(__name__)

REFRESH_S = 5.0
MAX_PENDING = 1000  # frames queued for a socket that does not read: past this it is closed


class SupervisorSession:
    def __init__(
        self,
        services: Services,
        scope: Scope,
        ws: web.WebSocketResponse,
        reads: SharedReads | None = None,
    ) -> None:
        self.services = services
        self._reads = reads
        self.scope = scope
        self.lead = scope.lead
        self.ws = ws
        self.watched: set[str] = set()
        # Conversations whose first read is under way: frames held until `watching` is sent.
        self._held: dict[str, list[MessageFrame | Closed]] = {}
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._since = StatusSince()

    # Sending: never awaits the socket itself.

    def push(self, frame: Frame) -> None:
        if self._out.qsize() >= MAX_PENDING:
            log.warning("supervisor %s reads too slowly; closing", self.lead.id)
            self._out.put_nowait(None)
            return
        self._out.put_nowait(encode(frame))

    def _live(self, conversation_id: str, frame: MessageFrame | Closed) -> None:
        held = self._held.get(conversation_id)
        if held is not None:
            held.append(frame)
        elif conversation_id in self.watched:
            self.push(frame)

    def on_message(self, conversation_id: str, message: Message) -> None:
        self._live(conversation_id, MessageFrame(conversation_id=conversation_id, message=message))

    def on_closed(self, conversation_id: str, reason: str) -> None:
        self._live(conversation_id, Closed(conversation_id=conversation_id, reason=reason))

    def on_deadline(self, alert: DeadlineAlert) -> None:
        if self.scope.sees_queue(alert.queue):
            self.push(alert)

    def hold(self, conversation_id: str) -> None:
        """Start a watch: live frames wait until its first read is sent."""
        self.watched.discard(conversation_id)
        self._held[conversation_id] = []

    def release(self, conversation_id: str, already_sent: set[str] | None) -> None:
        """The first read went out (already_sent: its message ids), or the watch failed
        (None): send what was held that the read did not have, and go live."""
        held = self._held.pop(conversation_id, [])
        if already_sent is None:
            return
        self.watched.add(conversation_id)
        for frame in held:
            if isinstance(frame, MessageFrame) and frame.message.id in already_sent:
                continue
            self.push(frame)

    async def run_writer(self) -> None:
        while True:
            data = await self._out.get()
            if data is None or self.ws.closed:
                with contextlib.suppress(Exception):
                    await self.ws.close()
                return
            try:
                await self.ws.send_frame(data, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("supervisor %s socket write failed: %s", self.lead.id, exc)
                return

    async def run_wallboard(self) -> None:
        tap = self.services.switchboard.tap
        interval_s = self.services.config.core.supervisor.wallboard_min_interval_ms / 1000
        loop = asyncio.get_running_loop()
        wake = tap.subscribe()
        tap.listen_deadlines(self)  # for as long as the socket, as the wallboard
        outage = Outage(log, f"supervisor {self.lead.id}'s wallboard")
        try:
            while True:
                wake.clear()
                built_at = loop.time()
                try:
                    board = await build_wallboard(
                        self.services, self.scope, self._since, self._reads
                    )
                    self.push(board)
                    outage.succeeded()
                except Exception as exc:
                    outage.failed(exc)  # the next change or refresh tries again
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), REFRESH_S)
                # Changes inside the interval coalesce into the next frame.
                delay = built_at + interval_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            tap.unsubscribe(wake)
            tap.unlisten_deadlines(self)

    def forget(self) -> None:
        tap = self.services.switchboard.tap
        for conversation_id in [*self.watched, *self._held]:
            tap.unwatch(conversation_id, self)
        self.watched.clear()
        self._held.clear()
