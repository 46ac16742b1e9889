"""What every part of the Router shares: the Redis client, the key builders, the loaded Lua
scripts, the queues and the routing settings, and the few helpers each script call needs
(milliseconds, msgpack, turning a script's refusal into a RoutingError).

The Router is one object made of parts that each own one kind of work (ingest, routing
decisions, conversation changes, maintenance); they meet here, so that no part imports
another and each reads on its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from presence.keys import PresenceKeys
from presence.lua import Scripts
from router.config import QueueConfig, RoutingConfig
from router.events import EventsConfig
from router.keys import RouterKeys
from router.reads import RouterReads, text
from router.results import RoutingError
from router.scripts import CONTRACTS

encode = msgspec.msgpack.Encoder().encode


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def refuse(reply: list[Any], **refusals: tuple[str, str]) -> None:
    """Raise the RoutingError (code, detail) a script's refusal (its first item) stands for."""
    refusal = refusals.get(text(reply[0]))
    if refusal is not None:
        raise RoutingError(*refusal)


def conversation_refusals(conversation_id: str) -> dict[str, tuple[str, str]]:
    """The refusals of a script that acts on an open conversation for its agent."""
    return {
        "gone": ("unknown_conversation", f"no open conversation {conversation_id}"),
        "not_yours": ("not_yours", f"conversation {conversation_id} is not yours"),
    }


class RouterCore(RouterReads):
    def __init__(
        self,
        redis: Any,
        tenant: str,
        queues: Sequence[QueueConfig],
        settings: RoutingConfig,
        default_queue: str | None = None,
        events: EventsConfig | None = None,
    ) -> None:
        super().__init__(
            redis,
            RouterKeys(tenant, [q.name for q in queues]),
            PresenceKeys(tenant),
            settings.recent_messages,
        )
        self.queues = {q.name: q for q in queues}
        self.settings = settings
        self.default_queue = default_queue or next(iter(self.queues))
        self.events = events or EventsConfig()
        self._scripts = Scripts(
            redis,
            "router",
            CONTRACTS,
            self.keys,
            self.agent_keys,
            fixed_args=self.events.trim_args(),
        )
        self._every_queue = {
            "queue_keys": self.keys.queue_keys,
            "queue_names": self.keys.queue_names,
        }

    def _queues(self, names: Sequence[str] | None = None) -> dict[str, list[str]]:
        """A script call's queue groups: the keys of every queue (or of those named) and, in
        the same order, their names."""
        if names is None:
            return self._every_queue
        return {"queue_keys": [self.keys.queue(n) for n in names], "queue_names": list(names)}
