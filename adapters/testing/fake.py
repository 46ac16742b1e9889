"""An in-memory channel for tests, ours and integrators'.

A test plays the customer with :meth:`FakeAdapter.receive` and watches what the gateway
sends back with :meth:`FakeAdapter.next_sent` and :meth:`FakeAdapter.next_event`::

    fake = FakeAdapter(FakeConfig(), host)
    result = await fake.receive("where is my parcel?", customer_id="c1")
    ...                                         # an agent accepts and replies
    reply = await fake.next_sent(timeout=5)
    assert reply.text == "on its way"

Everything is kept on the instance; two fakes never share anything.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Iterable
from typing import ClassVar, Generic, TypeVar

import msgspec

from adapters.contract import (
    Adapter,
    AdapterHost,
    Attachment,
    ConversationEvent,
    CustomerRef,
    DeliveryError,
    Inbound,
    IngestResult,
    Outbound,
)

T = TypeVar("T")


class FakeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[fake]`` table: ``enabled``, and ``account``, the account of every message."""

    enabled: bool = True
    account: str = "default"


class Recorder(Generic[T]):
    """A list that can be awaited: ``next()`` returns each item once, in order, waiting for
    it if it has not come yet, so a test never misses an item that came early.

    ``timeout`` is a parameter, not left to the caller's ``asyncio.timeout``, because every
    test needs one: a missing reply must fail the test, not hang it."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._read = 0
        self._changed = asyncio.Condition()

    async def add(self, item: T) -> None:
        async with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    async def next(self, timeout: float, what: str) -> T:  # noqa: ASYNC109
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: len(self.items) > self._read)
            except TimeoutError:
                raise TimeoutError(f"no {what} within {timeout} s") from None
            self._read += 1
            return self.items[self._read - 1]

    def pending(self) -> list[T]:
        """What next() has not returned yet."""
        return self.items[self._read :]


class FakeAdapter(Adapter[FakeConfig]):
    """The channel ``fake``. Attributes a test may read:

    - ``sent``: every Outbound that send() accepted, in order;
    - ``events``: every ConversationEvent given to notify();
    - ``failed``: (Outbound, DeliveryError) for each send() made to fail;
    - ``started``, ``closed``: lifecycle calls seen.
    """

    name: ClassVar[str] = "fake"
    Config: ClassVar[type[msgspec.Struct]] = FakeConfig

    def __init__(self, config: FakeConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        self._sent: Recorder[Outbound] = Recorder()
        self._events: Recorder[ConversationEvent] = Recorder()
        self.failed: list[tuple[Outbound, DeliveryError]] = []
        self._failures: collections.deque[DeliveryError] = collections.deque()
        self._ready = True
        self.started = False
        self.closed = False

    @property
    def sent(self) -> list[Outbound]:
        return self._sent.items

    @property
    def events(self) -> list[ConversationEvent]:
        return self._events.items

    # The customer's side.

    async def receive(
        self,
        text: str,
        *,
        customer_id: str,
        external_id: str | None = None,
        customer_name: str | None = None,
        kind: str = "text",
        attachments: Iterable[Attachment] = (),
        metadata: dict[str, str] | None = None,
    ) -> IngestResult:
        """A customer message arrives; returns what the host made of it. Pass the same
        external_id twice to play a channel's redelivery."""
        inbound = Inbound(
            channel=self.name,
            account=self.config.account,
            external_id=external_id or uuid.uuid4().hex,
            customer=CustomerRef(id=customer_id, name=customer_name),
            text=text,
            kind=kind,
            attachments=list(attachments),
            metadata=dict(metadata or {}),
        )
        return await self.host.ingest(inbound)

    async def next_sent(self, timeout: float = 5.0) -> Outbound:  # noqa: ASYNC109
        """The next outbound message not yet returned here; waits for it up to timeout
        (then TimeoutError)."""
        return await self._sent.next(timeout, "outbound message")

    async def next_event(self, timeout: float = 5.0) -> ConversationEvent:  # noqa: ASYNC109
        """The next conversation event not yet returned here, like next_sent()."""
        return await self._events.next(timeout, "conversation event")

    def fail_next_send(
        self,
        code: str = "refused",
        detail: str = "the fake channel refused the message",
        *,
        retryable: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of send() raise DeliveryError(code, detail)."""
        for _ in range(times):
            self._failures.append(DeliveryError(code, detail, retryable=retryable))

    def set_ready(self, ready: bool) -> None:
        """What ready() answers, to test readiness reporting."""
        self._ready = ready

    # The gateway's side.

    async def start(self) -> None:
        self.started = True

    async def send(self, outbound: Outbound) -> None:
        if self._failures:
            error = self._failures.popleft()
            self.failed.append((outbound, error))
            raise error
        await self._sent.add(outbound)

    async def notify(self, event: ConversationEvent) -> None:
        await self._events.add(event)

    async def ready(self) -> bool:
        return self._ready and not self.closed

    async def aclose(self) -> None:
        self.closed = True
