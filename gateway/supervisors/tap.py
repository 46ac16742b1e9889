"""The change tap: a small in-process hub that the flows tell what just happened (a routing
decision, a customer message, a message sent to a customer, a close, a status change) and
that wakes the supervisor sockets interested in it (and a complaint's deadline, for the leads
of its queue). It decides nothing and stores nothing:
telling it costs a few set() calls, so the flows may tell it on every path.

A wallboard wake-up is only a flag (``asyncio.Event``) per subscriber: a burst of changes
costs one rebuilt wallboard, whose pace the socket sets ([supervisor]
wallboard_min_interval_ms). Watchers of a conversation get its messages and its close.

Only what passes through this process reaches the tap; the relay (relay.py), when the app
has one, carries it to the other processes whose leads want it, and back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from adapters.model import Message
from gateway.supervisors.protocol import DeadlineAlert

log = logging.getLogger(__name__)


class Watcher(Protocol):
    def on_message(self, conversation_id: str, message: Message) -> None: ...

    def on_closed(self, conversation_id: str, reason: str) -> None: ...


class DeadlineListener(Protocol):
    """A lead's socket, told of complaint deadlines in the queues it sees."""

    def on_deadline(self, alert: DeadlineAlert) -> None: ...


class Remote(Protocol):
    """Where the tap passes on what it hears for other processes (relay.py)."""

    def message(self, conversation_id: str, message: Message) -> None: ...

    def closed(self, conversation_id: str, reason: str) -> None: ...

    def changed(self) -> None: ...

    def deadline(self, alert: DeadlineAlert) -> None: ...

    def watches_changed(self) -> None: ...


class ChangeTap:
    def __init__(self) -> None:
        self._boards: set[asyncio.Event] = set()
        self._watchers: dict[str, set[Watcher]] = {}
        self._leads: set[DeadlineListener] = set()
        self.remote: Remote | None = None
        # Counts changes, so that a read of Redis made since the last one can be shared.
        self.generation = 0

    # What the flows call. ``local``: heard from another process, so not passed on again.

    def changed(self, local: bool = False) -> None:
        """Something a wallboard shows may have changed: wake every wallboard."""
        self.generation += 1
        for wake in self._boards:
            wake.set()
        if self.remote is not None and not local:
            self.remote.changed()

    def message(self, conversation_id: str, message: Message, local: bool = False) -> None:
        """A message was stored in a conversation (a customer's, or one sent to them)."""
        self._each(conversation_id, lambda w: w.on_message(conversation_id, message))
        if self.remote is not None and not local:
            self.remote.message(conversation_id, message)

    def closed(self, conversation_id: str, reason: str, local: bool = False) -> None:
        self._each(conversation_id, lambda w: w.on_closed(conversation_id, reason))
        if self.remote is not None and not local:
            self.remote.closed(conversation_id, reason)
        self.changed(local)

    def deadline(self, alert: DeadlineAlert, local: bool = False) -> None:
        """A complaint's reminder or missed deadline: to every lead socket (each keeps
        those of its queues), here and, through the relay, in the other processes."""
        for lead in list(self._leads):
            try:
                lead.on_deadline(alert)
            except Exception:
                log.exception("supervisor deadline listener failed on %s", alert.conversation_id)
        if self.remote is not None and not local:
            self.remote.deadline(alert)

    # What supervisor sockets call.

    def listen_deadlines(self, lead: DeadlineListener) -> None:
        self._leads.add(lead)

    def unlisten_deadlines(self, lead: DeadlineListener) -> None:
        self._leads.discard(lead)

    def subscribe(self) -> asyncio.Event:
        wake = asyncio.Event()
        first = not self._boards
        self._boards.add(wake)
        if first and self.remote is not None:
            self.remote.watches_changed()
        return wake

    def unsubscribe(self, wake: asyncio.Event) -> None:
        self._boards.discard(wake)

    def watch(self, conversation_id: str, watcher: Watcher) -> None:
        new = conversation_id not in self._watchers
        self._watchers.setdefault(conversation_id, set()).add(watcher)
        if new and self.remote is not None:
            self.remote.watches_changed()

    def unwatch(self, conversation_id: str, watcher: Watcher) -> None:
        watchers = self._watchers.get(conversation_id)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[conversation_id]
                if self.remote is not None:
                    self.remote.watches_changed()

    def watching(self, conversation_id: str) -> bool:
        return bool(self._watchers.get(conversation_id))

    def local_interest(self) -> tuple[bool, list[str]]:
        """Whether wallboards are open here, and the conversations watched here."""
        return bool(self._boards), sorted(self._watchers)

    def _each(self, conversation_id: str, call: Callable[[Watcher], None]) -> None:
        for watcher in list(self._watchers.get(conversation_id, ())):
            try:
                call(watcher)
            except Exception:
                # A watcher's failure must never fail the flow that told the tap.
                log.exception("supervisor watcher failed on %s", conversation_id)
