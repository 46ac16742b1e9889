"""An AdapterHost in memory, for unit tests of adapters, ours and integrators'.

The gateway's host (gateway/flows/host.py) needs Redis, a router and agents. An adapter's unit
test needs none of them: it needs something that takes ``ingest`` the way the gateway does
(deduplicated on channel, account and external_id, one conversation per customer and thread,
a closed one reopened within ``reopen_within_s``) and that remembers what the adapter asked
for, so the test can look::

    host = MemoryHost()
    adapter = MyAdapter(MyConfig(), host)
    ...                                   # the channel delivers a message
    [inbound] = host.ingested
    await adapter.send(host.reply(host.conversation("my", "default", "ann").id, "hello"))

Nothing is routed: conversations wait until the test plays an agent with :meth:`assign`.
``redis`` is whatever the test passes (an adapter that keeps state in Redis gets the suite's
client); the host itself keeps nothing there.

Several hosts made with :meth:`peer` play gateway processes: they share the conversations
(as processes share Redis) and ``send_to_node`` reaches the peer's handlers. Each host keeps
its own record of the calls made on it.
"""

from __future__ import annotations

import collections
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import msgspec

from adapters.contract import (
    CsatAnswer,
    CustomerRef,
    Inbound,
    IngestResult,
    NodeHandler,
    OpenConversation,
    Outbound,
    Reclassified,
    StoredMessage,
    utc_now,
)

# The host's coroutines that fail() can make raise.
FAILABLE = frozenset(
    {
        "ingest",
        "open_conversation",
        "reclassify",
        "tell_agent",
        "close_conversation",
        "rate",
        "send_to_node",
    }
)


class Lookup(NamedTuple):
    """One open_conversation() call."""

    channel: str
    account: str
    customer_id: str
    thread: str | None


class Rating(NamedTuple):
    """One rate() call."""

    channel: str
    account: str
    customer_id: str
    conversation_id: str
    score: int
    comment: str | None


class NodeMessage(NamedTuple):
    """One send_to_node() call, delivered or not."""

    node_id: str
    topic: str
    payload: bytes


class Conversation(msgspec.Struct, kw_only=True):
    """A conversation as the host keeps it; tests read it, and may change it with
    assign() and close_conversation()."""

    id: str
    channel: str
    account: str
    customer: CustomerRef
    thread: str | None
    messages: list[StoredMessage] = []
    agent_name: str | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None

    @property
    def state(self) -> Literal["queued", "assigned", "closed"]:
        if self.closed_at is not None:
            return "closed"
        return "queued" if self.agent_name is None else "assigned"


ThreadKey = tuple[str, str, str, str | None]


class _Shared:
    """What gateway processes share through Redis: conversations and the dedupe record."""

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.latest: dict[ThreadKey, str] = {}  # (channel, account, customer, thread) -> id
        self.seen: dict[tuple[str, str, str], IngestResult] = {}
        self.nodes: dict[str, MemoryHost] = {}
        self._counts: collections.Counter[str] = collections.Counter()

    def next_id(self, prefix: str) -> str:
        self._counts[prefix] += 1
        return f"{prefix}{self._counts[prefix]}"


class _Failure(NamedTuple):
    error: BaseException
    times: int | None  # None: until heal()


class MemoryHost:
    """:class:`adapters.contract.AdapterHost` in memory. What a test may read:

    - ``ingested``: every Inbound stored (duplicates are not), in order;
    - ``lookups``: every open_conversation() call, as :class:`Lookup`;
    - ``reclassified``: (conversation_id, inbound) of every reclassify();
    - ``told``: (conversation_id, code, detail) of every tell_agent();
    - ``closed``: (conversation_id, reason) of every close_conversation();
    - ``rated``: every rate() call, as :class:`Rating`; ``rate_outcome`` is what it answers;
    - ``node_messages``: every send_to_node(), as :class:`NodeMessage`;
    - ``conversations``: every conversation by id, shared with the peers.

    A call made to raise by fail() is not recorded.

    ``queue_position`` is what ingest() reports for a waiting conversation (None: as when
    the gateway offered it at once).
    """

    def __init__(
        self,
        *,
        tenant: str = "test",
        node_id: str = "node-1",
        redis: Any = None,
        queue_position: int | None = 1,
        _shared: _Shared | None = None,
    ) -> None:
        # Plain attributes where the protocol has read-only properties: a test may set them.
        self.tenant, self.node_id, self.redis = tenant, node_id, redis
        self.trusted_proxies: list[str] = []
        self.limits_hit: list[str] = []  # limited()'s limits, in order
        self.queue_position = queue_position
        self._shared = _shared or _Shared()
        if node_id in self._shared.nodes:
            raise ValueError(f"a host with node_id {node_id!r} already shares this store")
        self._shared.nodes[node_id] = self
        self._handlers: dict[str, NodeHandler] = {}
        self._failures: dict[str, _Failure] = {}
        self.ingested: list[Inbound] = []
        self.lookups: list[Lookup] = []
        self.reclassified: list[tuple[str, Inbound]] = []
        self.told: list[tuple[str, str, str]] = []
        self.closed: list[tuple[str, str]] = []
        self.rated: list[Rating] = []
        self.rate_outcome = CsatAnswer(outcome="ok")
        self.node_messages: list[NodeMessage] = []

    def peer(self, node_id: str) -> MemoryHost:
        """Another gateway process: same tenant, Redis and conversations; node messages
        between the two are delivered."""
        return MemoryHost(
            tenant=self.tenant,
            node_id=node_id,
            redis=self.redis,
            queue_position=self.queue_position,
            _shared=self._shared,
        )

    # The AdapterHost protocol.

    def key(self, adapter: str, *parts: str) -> str:
        # The gateway's layout, so that keys a test reads in Redis look like production's.
        return ":".join([f"zt:{{{self.tenant}}}:ad:{adapter}", *parts])

    def limited(self, limit: str) -> None:
        self.limits_hit.append(limit)

    async def ingest(self, inbound: Inbound) -> IngestResult:
        self._maybe_fail("ingest")
        dedupe = (inbound.channel, inbound.account, inbound.external_id)
        first = self._shared.seen.get(dedupe)
        if first is not None:
            return msgspec.structs.replace(first, duplicate=True)
        conversation = self._conversation_for(inbound)
        message = StoredMessage(
            id=self._shared.next_id("m"),
            direction="in",
            text=inbound.text,
            sent_at=inbound.received_at,
            attachments=list(inbound.attachments),
            metadata=dict(inbound.metadata),
        )
        conversation.messages.append(message)
        self.ingested.append(inbound)
        waiting = conversation.state == "queued"
        result = IngestResult(
            conversation_id=conversation.id,
            message=message,
            queue_position=self.queue_position if waiting else None,
        )
        self._shared.seen[dedupe] = result
        return result

    async def open_conversation(
        self, channel: str, account: str, customer_id: str, thread: str | None = None
    ) -> OpenConversation | None:
        self._maybe_fail("open_conversation")
        self.lookups.append(Lookup(channel, account, customer_id, thread))
        found = self._latest((channel, account, customer_id, thread))
        if found is None or found.state == "closed":
            return None
        return OpenConversation(
            id=found.id, messages=list(found.messages), agent_name=found.agent_name
        )

    async def reclassify(self, conversation_id: str, inbound: Inbound) -> Reclassified:
        """Recorded; nothing moves, as when the new content classifies as the old did (the
        host has no routing rules)."""
        self._maybe_fail("reclassify")
        self.reclassified.append((conversation_id, inbound))
        found = self._shared.conversations.get(conversation_id)
        return Reclassified(moved=False, state=found.state if found else "closed")

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        self._maybe_fail("tell_agent")
        self.told.append((conversation_id, code, detail))

    async def close_conversation(self, conversation_id: str, reason: str) -> None:
        self._maybe_fail("close_conversation")
        self.closed.append((conversation_id, reason))
        found = self._shared.conversations.get(conversation_id)
        if found is not None and found.closed_at is None:
            found.closed_at, found.close_reason = utc_now(), reason

    async def rate(
        self,
        channel: str,
        account: str,
        customer_id: str,
        conversation_id: str,
        score: int,
        comment: str | None = None,
    ) -> CsatAnswer:
        """Recorded; answers ``rate_outcome`` (a test sets it to play a refusal)."""
        self._maybe_fail("rate")
        self.rated.append(Rating(channel, account, customer_id, conversation_id, score, comment))
        return self.rate_outcome

    async def send_to_node(self, node_id: str, topic: str, payload: bytes) -> None:
        """Delivered at once to the handler on node_id (this host or a peer); without one,
        dropped, as the gateway's bus drops a message to a process that is gone."""
        self._maybe_fail("send_to_node")
        self.node_messages.append(NodeMessage(node_id, topic, payload))
        target = self._shared.nodes.get(node_id)
        handler = target._handlers.get(topic) if target is not None else None
        if handler is not None:
            await handler(payload)

    def on_node_message(self, topic: str, handler: NodeHandler) -> None:
        self._handlers[topic] = handler

    # What a test does and reads.

    @property
    def conversations(self) -> dict[str, Conversation]:
        return self._shared.conversations

    def conversation(
        self, channel: str, account: str, customer_id: str, thread: str | None = None
    ) -> Conversation:
        """The customer's latest conversation on this channel, account and thread, open or
        closed; KeyError when they have none."""
        found = self._latest((channel, account, customer_id, thread))
        if found is None:
            known = ", ".join(repr(k) for k in self._shared.latest) or "none"
            raise KeyError(
                f"no conversation for {(channel, account, customer_id, thread)!r}; "
                f"there are: {known}"
            )
        return found

    def assign(self, conversation_id: str, agent_name: str) -> None:
        """Play an agent accepting the conversation: open_conversation() then names them,
        reclassify() finds it assigned, and its messages report no queue position."""
        self._shared.conversations[conversation_id].agent_name = agent_name

    def reply(
        self,
        conversation_id: str,
        text: str,
        *,
        agent_name: str | None = "Agent",
        metadata: dict[str, str] | None = None,
    ) -> Outbound:
        """The Outbound the gateway would hand the adapter's send() for an agent's reply in
        this conversation; the reply is kept among the conversation's messages."""
        found = self._shared.conversations[conversation_id]
        message_id = self._shared.next_id("m")
        found.messages.append(
            StoredMessage(
                id=message_id, direction="out", text=text, sent_at=utc_now(), author=agent_name
            )
        )
        return Outbound(
            channel=found.channel,
            account=found.account,
            conversation_id=found.id,
            customer=found.customer,
            message_id=message_id,
            text=text,
            agent_name=agent_name,
            metadata=dict(metadata or {}),
        )

    def fail(self, method: str, error: BaseException, *, times: int | None = None) -> None:
        """Make the host's ``method`` (ingest, open_conversation, ...) raise ``error``: the
        next ``times`` calls, or every call until heal(method) when times is None."""
        if method not in FAILABLE:
            raise ValueError(f"{method!r} cannot fail; one of {sorted(FAILABLE)}")
        self._failures[method] = _Failure(error, times)

    def heal(self, method: str) -> None:
        """Calls of ``method`` succeed again."""
        self._failures.pop(method, None)

    # Inside.

    def _maybe_fail(self, method: str) -> None:
        failure = self._failures.get(method)
        if failure is None:
            return
        if failure.times is not None:
            if failure.times <= 1:
                del self._failures[method]
            else:
                self._failures[method] = failure._replace(times=failure.times - 1)
        raise failure.error

    def _latest(self, key: ThreadKey) -> Conversation | None:
        conversation_id = self._shared.latest.get(key)
        return self._shared.conversations.get(conversation_id) if conversation_id else None

    def _conversation_for(self, inbound: Inbound) -> Conversation:
        key = (inbound.channel, inbound.account, inbound.customer.id, inbound.thread)
        found = self._latest(key)
        if found is not None and found.closed_at is not None:
            window = timedelta(seconds=inbound.reopen_within_s)
            if inbound.reopen_within_s > 0 and utc_now() - found.closed_at < window:
                found.closed_at = found.close_reason = None
            else:
                found = None
        if found is None:
            found = Conversation(
                id=self._shared.next_id("c"),
                channel=inbound.channel,
                account=inbound.account,
                customer=inbound.customer,
                thread=inbound.thread,
            )
            self._shared.conversations[found.id] = found
            self._shared.latest[key] = found.id
        return found
