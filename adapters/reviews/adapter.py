"""The review channel: product and app reviews as conversations, public answers as replies.

Table ``[reviews]`` (the adapter's name), channel ``review`` (what messages, queues' channel
lists, agents' capacity and rules name), one account per feed. See docs/channels/reviews.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

import aiohttp
import msgspec
from aiohttp import web

from adapters.contract import Adapter, AdapterHost, DeliveryError, Outbound
from adapters.reviews.config import FeedConfig, ReviewsConfig
from adapters.reviews.cursor import FeedCursor
from adapters.reviews.intake import CHANNEL, Intake
from adapters.reviews.poller import Poller
from adapters.reviews.replies import Replier
from adapters.reviews.store import ReviewStore
from adapters.reviews.webhook import Webhook

log = logging.getLogger("zhongtai.reviews")


class _Feed:
    """One feed's parts."""

    def __init__(self, config: ReviewsConfig, feed: FeedConfig, host: AdapterHost) -> None:
        self.config = feed
        self.store = ReviewStore(host, feed.name)
        self.cursor = FeedCursor(host, feed.name)
        self.intake = Intake(host, feed, self.store)
        self.poller: Poller | None = None


class ReviewsAdapter(Adapter[ReviewsConfig]):
    name: ClassVar[str] = "reviews"
    Config: ClassVar[type[msgspec.Struct]] = ReviewsConfig
    # The channel name on messages and conversations: "review", as queues, capacities and
    # rules spell it, while the table is [reviews].
    channel: ClassVar[str] = CHANNEL

    def __init__(self, config: ReviewsConfig, host: AdapterHost) -> None:
        super().__init__(config, host)
        self._feeds = {f.name: _Feed(config, f, host) for f in config.feeds}
        self._session: aiohttp.ClientSession | None = None
        self._replier: Replier | None = None
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    # Lifecycle.

    def web_app(self) -> web.Application:
        return Webhook(self.config, self._parts).app()

    def _parts(self, name: str) -> tuple[FeedConfig, Intake, ReviewStore] | None:
        feed = self._feeds.get(name)
        return None if feed is None else (feed.config, feed.intake, feed.store)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout_s)
        )
        self._replier = Replier(self.config, self._session)
        for feed in self._feeds.values():
            if feed.config.polled:
                feed.poller = Poller(
                    self.config, feed.config, feed.intake, feed.store, feed.cursor, self._session
                )

    async def run(self) -> None:
        pollers = [f.poller for f in self._feeds.values() if f.poller is not None]
        if not pollers:
            return
        self._tasks = [
            asyncio.create_task(poller.run(), name=f"reviews-poll-{poller.feed.name}")
            for poller in pollers
        ]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self._stop_polling()

    async def _stop_polling(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def ready(self) -> bool:
        if self._closing or self._session is None:
            return False
        if not self.config.ready_after_first_poll:
            return True
        return all(f.poller.attempted.is_set() for f in self._feeds.values() if f.poller)

    async def aclose(self) -> None:
        self._closing = True
        # The gateway closes adapters before it cancels their run(): stop polling first, so
        # no poll is cut off by its HTTP session closing under it.
        await self._stop_polling()
        if self._session is not None and not self._session.closed:
            await self._session.close()

    # Replies.

    async def send(self, outbound: Outbound) -> None:
        feed = self._feeds.get(outbound.account)
        if feed is None:
            raise DeliveryError("unknown_feed", f"no review feed {outbound.account!r}")
        if outbound.agent_name is None and not self.config.post_system_messages:
            # The gateway's own notices (queue positions, inactivity) must not become a
            # public answer under the review; they stay in the conversation's history.
            log.info("reviews %s: automatic message not posted publicly", feed.config.name)
            return
        review_id = await feed.store.review_of(outbound.conversation_id)
        if review_id is None:
            raise DeliveryError("unknown_review", "this conversation has no review to answer")
        state = await feed.store.get(review_id)
        if state is not None and state.deleted:
            raise DeliveryError("review_deleted", "the review was deleted; nothing to answer")
        held = await feed.store.claim_reply(outbound.message_id)
        if held == "sent":
            return  # a retry of a reply already posted
        if held is not None:
            raise DeliveryError(
                "in_progress", "this answer is being posted; try again shortly", retryable=True
            )
        assert self._replier is not None
        values = {
            "review_id": review_id,
            "text": outbound.text,
            "product": state.product if state else "",
            "feed": feed.config.name,
            "author": outbound.customer.name or outbound.customer.id,
            "conversation_id": outbound.conversation_id,
            "message_id": outbound.message_id,
        }
        try:
            await self._replier.post(feed.config, values)
        except BaseException:
            await feed.store.reply_failed(outbound.message_id)
            raise
        await feed.store.reply_sent(outbound.message_id)
