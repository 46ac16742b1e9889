"""An AdapterHost for the email channel's unit tests: real Redis, ingest recorded (one
conversation per customer and thread, deduplicated on external_id like the gateway)."""

from __future__ import annotations

from typing import Any

from adapters.contract import Inbound, IngestResult, OpenConversation, StoredMessage, utc_now


class StubHost:
    def __init__(self, redis: Any, tenant: str) -> None:
        self._redis = redis
        self._tenant = tenant
        self.ingested: list[Inbound] = []
        self.notices: list[tuple[str, str, str]] = []
        self.conversations: dict[tuple[str, str, str | None], str] = {}
        self.seen: dict[str, IngestResult] = {}
        self.fail_ingest = 0

    @property
    def tenant(self) -> str:
        return self._tenant

    @property
    def node_id(self) -> str:
        return "stub-node"

    @property
    def redis(self) -> Any:
        return self._redis

    def key(self, adapter: str, *parts: str) -> str:
        return ":".join([f"zt:{{{self._tenant}}}:ad:{adapter}", *parts])

    async def ingest(self, inbound: Inbound) -> IngestResult:
        if self.fail_ingest:
            self.fail_ingest -= 1
            raise ConnectionError("Redis went away")
        dedupe = f"{inbound.channel}|{inbound.account}|{inbound.external_id}"
        if dedupe in self.seen:
            previous = self.seen[dedupe]
            return IngestResult(
                conversation_id=previous.conversation_id, message=previous.message, duplicate=True
            )
        field = (inbound.account, inbound.customer.id, inbound.thread)
        conversation = self.conversations.setdefault(field, f"c{len(self.conversations) + 1}")
        message = StoredMessage(
            id=f"m{len(self.ingested) + 1}", direction="in", text=inbound.text, sent_at=utc_now()
        )
        self.ingested.append(inbound)
        result = IngestResult(conversation_id=conversation, message=message)
        self.seen[dedupe] = result
        return result

    async def open_conversation(self, *args: Any, **kwargs: Any) -> OpenConversation | None:
        return None

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        self.notices.append((conversation_id, code, detail))

    async def send_to_node(self, node_id: str, topic: str, payload: bytes) -> None:
        raise NotImplementedError

    def on_node_message(self, topic: str, handler: Any) -> None:
        pass
