"""The gateway's side of the adapter contract (adapters.contract.AdapterHost).

Adapters are built, and their web apps mounted, before the app starts; the host is bound to
the Redis client and switchboard once they exist at startup."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from adapters.contract import (
    CsatAnswer,
    Inbound,
    IngestResult,
    NodeHandler,
    OpenConversation,
    Reclassified,
)
from adapters.model import Message
from gateway.flows.switchboard import Switchboard
from gateway.redis.bus import NodeBus


class GatewayHost:
    def __init__(
        self,
        tenant: str,
        node_id: str,
        trusted_proxies: Sequence[str] = (),
        on_limited: Callable[[str], None] = lambda _limit: None,
    ) -> None:
        self._tenant = tenant
        self._on_limited = on_limited
        self._node_id = node_id
        self._trusted_proxies = tuple(trusted_proxies)
        self._redis: Any = None
        self._switchboard: Switchboard | None = None
        self._bus: NodeBus | None = None
        self._pending_handlers: dict[str, NodeHandler] = {}

    def bind(self, redis: Any, switchboard: Switchboard, bus: NodeBus) -> None:
        self._redis, self._switchboard, self._bus = redis, switchboard, bus
        for topic, handler in self._pending_handlers.items():
            bus.on(topic, handler)

    @property
    def tenant(self) -> str:
        return self._tenant

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def trusted_proxies(self) -> Sequence[str]:
        return self._trusted_proxies

    @property
    def redis(self) -> Any:
        return self._redis

    @property
    def switchboard(self) -> Switchboard:
        if self._switchboard is None:
            raise RuntimeError("the gateway has not started yet")
        return self._switchboard

    def key(self, adapter: str, *parts: str) -> str:
        return ":".join([f"zt:{{{self._tenant}}}:ad:{adapter}", *parts])

    def limited(self, limit: str) -> None:
        self._on_limited(limit)

    async def ingest(self, inbound: Any) -> IngestResult:
        return await self.switchboard.ingest(inbound)

    async def open_conversation(
        self, channel: str, account: str, customer_id: str, thread: str | None = None
    ) -> OpenConversation | None:
        router = self.switchboard.router
        conversation_id = await router.open_conversation_id(channel, account, customer_id, thread)
        if conversation_id is None:
            return None
        conversation = await router.conversation(conversation_id)
        if conversation is None:
            return None
        agent = self.switchboard.agents.get(conversation.agent or "")
        return OpenConversation(
            id=conversation.id,
            messages=[self._as_customers_see(m) for m in conversation.messages],
            agent_name=agent.shown_to_customers if agent else None,
        )

    def _as_customers_see(self, message: Message) -> Message:
        """Stored messages name their author by agent id; customers only ever see the name
        the agent is shown to them by (as in live messages), never the id, and nothing for
        the gateway's own messages."""
        if message.author is None:
            return message
        agent = self.switchboard.agents.get(message.author)
        return msgspec.structs.replace(message, author=agent.shown_to_customers if agent else None)

    async def reclassify(self, conversation_id: str, inbound: Inbound) -> Reclassified:
        return await self.switchboard.reclassify(conversation_id, inbound)

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        await self.switchboard.tell_agent(conversation_id, code, detail)

    async def close_conversation(self, conversation_id: str, reason: str) -> None:
        await self.switchboard.close_conversation(conversation_id, None, reason)

    async def rate(
        self,
        channel: str,
        account: str,
        customer_id: str,
        conversation_id: str,
        score: int,
        comment: str | None = None,
    ) -> CsatAnswer:
        return await self.switchboard.aftercare.rate(
            channel, account, customer_id, conversation_id, score, comment
        )

    async def send_to_node(self, node_id: str, topic: str, payload: bytes) -> None:
        if self._bus is None:
            raise RuntimeError("the gateway has not started yet")
        await self._bus.send(node_id, topic, payload)

    def on_node_message(self, topic: str, handler: NodeHandler) -> None:
        if self._bus is None:
            self._pending_handlers[topic] = handler
        else:
            self._bus.on(topic, handler)
