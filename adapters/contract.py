"""The adapter contract: what a channel adapter receives, produces and must implement.

Adapters import nothing from the gateway, router or presence packages. Everything they need
from the gateway comes through :class:`AdapterHost`, which the gateway implements and which
``adapters.testing.MemoryHost`` implements in memory for adapters' tests.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import msgspec
from aiohttp import web

# The message model is shared with the router and the agent protocol (adapters/model.py);
# the contract re-exports it so that an adapter needs this module only.
from adapters.model import (
    Attachment,
    ConversationEvent,
    Customer,
    Inbound,
    Message,
    Outbound,
    Reclassified,
    utc_now,
)

# The names adapters have always used: the same structs, not copies.
CustomerRef = Customer
StoredMessage = Message

__all__ = [
    "Adapter",
    "AdapterHost",
    "Attachment",
    "ConversationEvent",
    "CsatAnswer",
    "CsatMode",
    "Customer",
    "CustomerRef",
    "DeliveryError",
    "Inbound",
    "IngestResult",
    "Message",
    "NodeHandler",
    "OpenConversation",
    "Outbound",
    "Reclassified",
    "StoredMessage",
    "utc_now",
]


class IngestResult(msgspec.Struct, kw_only=True):
    conversation_id: str
    message: StoredMessage
    duplicate: bool = False
    queue_position: int | None = None


class OpenConversation(msgspec.Struct, kw_only=True):
    id: str
    messages: list[StoredMessage]
    agent_name: str | None = None


class CsatAnswer(msgspec.Struct, kw_only=True):
    """What became of a customer's rating: stored (``ok``), or why not: they were never asked
    about that conversation (``not_asked``), the window closed (``expired``), or they rated
    it before (``already_rated``, ``score`` the one that counts)."""

    outcome: Literal["ok", "not_asked", "expired", "already_rated"]
    score: int | None = None


class DeliveryError(Exception):
    """The channel refused or could not take an outbound message.

    ``code`` is short and stable (the channel's own error code where it has one);
    ``detail`` is for the agent to read.
    """

    def __init__(self, code: str, detail: str, *, retryable: bool = False) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.retryable = code, detail, retryable


class NotDurable(Exception):
    """ingest stored the message but could not confirm that it would survive a failover
    of Redis (``[redis] min_replica_acks``). Tell the sender to send it again (a 503, an
    error frame): the retry is recognised as a duplicate and confirmed then."""

    code = "not_replicated"


NodeHandler = Callable[[bytes], Awaitable[None]]
# How a channel asks for a rating after a close: "frames" (the adapter shows the question
# from a csat_request event and hands the answer to AdapterHost.rate), "text" (the gateway
# sends the question as a message and takes a lone digit written back as the answer).
CsatMode = Literal["frames", "text"]


class AdapterHost(Protocol):
    """What the gateway offers every adapter."""

    @property
    def tenant(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def trusted_proxies(self) -> Sequence[str]:
        """``[server] trusted_proxies``: the proxies in front of the gateway whose
        ``X-Forwarded-For`` names the client, for an adapter without a list of its own."""
        ...

    @property
    def redis(self) -> Any:
        """A bytes-mode ``redis.asyncio.Redis``; keys must carry ``{tenant}`` (see key())."""

    def key(self, adapter: str, *parts: str) -> str:
        """A Redis key in the adapter's own namespace, with the tenant hash tag."""

    def limited(self, limit: str) -> None:
        """Count one client refused by a limit of the adapter's, named by its configuration
        key (``webchat.messages_per_minute``), after the client was told (an error frame, a
        4xx): ``zhongtai_limited_total{limit}``, so a flood shows on the dashboards."""

    async def ingest(self, inbound: Inbound) -> IngestResult:
        """Store the message (deduplicated on channel, account and external_id) and route it.
        When this returns, the message is durable in Redis; NotDurable when stored but not
        confirmed by enough replicas."""

    async def open_conversation(
        self, channel: str, account: str, customer_id: str, thread: str | None = None
    ) -> OpenConversation | None:
        """The customer's open conversation on this channel and account (and thread), if any."""

    async def reclassify(self, conversation_id: str, inbound: Inbound) -> Reclassified:
        """The conversation's content changed (a review was edited). Classify ``inbound``,
        written as the message that would open the conversation now, exactly as a new one;
        while the conversation waits in a queue, move it where that places it, keeping its
        original enqueue time, and route it at once. An offered, assigned or closed
        conversation is left as it is. Nothing is stored, and the customer is told nothing."""

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        """Tell the agent holding the conversation something about it (a closing reply
        window, a bounced reply): a ``notice`` frame on their socket. Nobody holds it: nothing
        is sent."""

    async def close_conversation(self, conversation_id: str, reason: str) -> None:
        """Close a conversation because of something on the channel (the customer unfollowed,
        the review was deleted): its agent and the customer are told ``reason``."""

    async def rate(
        self,
        channel: str,
        account: str,
        customer_id: str,
        conversation_id: str,
        score: int,
        comment: str | None = None,
    ) -> CsatAnswer:
        """The customer's rating (1-5, checked by the adapter) of a closed conversation they
        were asked about (a ``csat_request`` event); stored once, within the window."""

    async def send_to_node(self, node_id: str, topic: str, payload: bytes) -> None:
        """Deliver payload to the handler registered for topic on gateway process node_id
        (locally, without Redis, when node_id is this process)."""

    def on_node_message(self, topic: str, handler: NodeHandler) -> None:
        """Register the handler for payloads sent to this process under topic."""


ConfigT = TypeVar("ConfigT", bound=msgspec.Struct)


class Adapter(abc.ABC, Generic[ConfigT]):
    """Base class of channel adapters.

    A subclass sets ``name`` (the channel name and config table) and ``Config`` (a msgspec
    Struct decoded from that table, strictly). The gateway calls, in order: ``__init__``,
    ``web_app()`` once (mounted at ``/{name}/``), ``start()``, then ``run()`` as a background
    task if the adapter overrides it; at shutdown ``aclose()``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[msgspec.Struct]]
    # The channel on the adapter's messages, when it differs from its name (the reviews
    # adapter's messages are on channel "review").
    channel: ClassVar[str | None] = None
    # How the channel asks for a rating after a close (CsatMode); None: it is not asked.
    csat: ClassVar[CsatMode | None] = None

    def __init__(self, config: ConfigT, host: AdapterHost) -> None:
        self.config = config
        self.host = host

    def web_app(self) -> web.Application | None:
        return None

    async def start(self) -> None:
        """Prepare (subscribe to node topics, open clients). Must not block for long."""

    async def run(self) -> None:
        """Background work such as polling; cancelled at shutdown. Default: nothing."""

    @property
    def has_background_task(self) -> bool:
        return type(self).run is not Adapter.run

    @abc.abstractmethod
    async def send(self, outbound: Outbound) -> None:
        """Send an agent's reply to the customer; raise DeliveryError when refused."""

    async def notify(self, event: ConversationEvent) -> None:
        """Tell the customer about a change in their conversation. Default: nothing."""

    async def ready(self) -> bool:
        return True

    def open_connections(self) -> int:
        """Customer sockets this adapter holds on this process (for the websocket gauge)."""
        return 0

    async def aclose(self) -> None:
        """Release connections and sockets."""
