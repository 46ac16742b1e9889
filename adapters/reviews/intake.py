"""Taking one review into the gateway, whether a poll found it or a webhook pushed it:
new, edited, deleted, unchanged or too old.

A review is a conversation of its own (thread = review id). Each version of it (the text,
title or rating changed, or it was deleted) is one message whose external id is
``{review id}:v{version}``: a re-poll of the same version changes nothing, and an edit is a
new message in the same conversation. The version number comes from the per-review record
in Redis (store.py), written after the host stored the message, so a crash in between
makes the next poll send the same external id again, which the host deduplicates.

An edit may change how the review ranks (five stars to one): the host is asked to classify
the edited review as a new one and, while its conversation still waits in a queue, to move
it there (host.reclassify), so that the now angry customer is not left at the back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec
from redis.exceptions import LockError

from adapters.contract import AdapterHost, CustomerRef, Inbound
from adapters.reviews import sentiment
from adapters.reviews.config import FeedConfig
from adapters.reviews.review import Review, describe, describe_edit, digests
from adapters.reviews.store import ReviewState, ReviewStore

log = logging.getLogger("zhongtai.reviews")

CHANNEL = "review"

Outcome = Literal["new", "edited", "deleted", "unchanged", "old", "baseline", "ignored"]


class IntakeBusy(Exception):
    """Another process is taking the same review and did not finish in time."""


def customer_id(review: Review) -> str:
    return review.author_id or review.author or f"anonymous:{review.id}"


def metadata(feed: FeedConfig, review: Review) -> dict[str, str]:
    """What routing and agents' tools read: rating (classification rules' rating_at_most),
    sentiment, and where the review is."""
    mood = sentiment.analyse(f"{review.title}\n{review.text}")
    meta = {"review_id": review.id, "feed": feed.name, "sentiment": f"{mood.score:.2f}"}
    if review.rating is not None:
        meta["rating"] = f"{review.rating:g}"
        meta["rating_source"] = "feed"
    elif feed.estimate_rating:
        # Rules rank by rating; an unrated review gets the rating its words suggest, marked
        # as estimated, so that "垃圾，天天闪退" waits in the complaint queue, not behind praise.
        meta["rating"] = str(mood.estimated_rating())
        meta["rating_source"] = "sentiment"
    product = review.product or feed.product
    if product:
        meta["product"] = product
    if review.url:
        meta["url"] = review.url
    if review.time is not None:
        meta["review_time"] = review.time.isoformat()
    meta.update(review.extra)
    return meta


def _estimate(meta: dict[str, str]) -> int | None:
    return int(meta["rating"]) if meta.get("rating_source") == "sentiment" else None


class Intake:
    def __init__(self, host: AdapterHost, feed: FeedConfig, store: ReviewStore) -> None:
        self.host, self.feed, self.store = host, feed, store

    async def take(
        self,
        review: Review,
        *,
        polled: bool,
        baseline: bool = False,
        now: datetime | None = None,
    ) -> Outcome:
        state = await self.store.get(review.id)
        if _unchanged(state, review):
            return "unchanged"  # the common case of a re-poll: no lock, one HGET
        if review.deleted and (state is None or state.deleted):
            return "ignored"  # a tombstone for a review we never took, or took as deleted
        try:
            async with self.store.lock(review.id):
                state = await self.store.get(review.id)
                return await self._take(review, state, polled, baseline, now or datetime.now(UTC))
        except LockError as exc:
            raise IntakeBusy(f"review {review.id} is being taken elsewhere") from exc

    async def delete(self, review_id: str) -> Outcome:
        """A review gone from a complete listing."""
        return await self.take(Review(id=review_id, deleted=True), polled=True)

    async def _take(
        self,
        review: Review,
        state: ReviewState | None,
        polled: bool,
        baseline: bool,
        now: datetime,
    ) -> Outcome:
        if _unchanged(state, review):
            return "unchanged"
        if review.deleted:
            if state is None or state.deleted:
                return "ignored"
            return await self._deleted(review.id, state)
        fresh = state is None or state.version == 0
        if fresh and (baseline or (polled and self._too_old(review, now))):
            # Recorded, so that it stays quiet on every later poll, but never a conversation.
            await self.store.put(review.id, self._state(review, version=0))
            return "baseline" if baseline else "old"
        version = (state.version if state else 0) + 1
        meta = metadata(self.feed, review)
        customer = state.customer if state and state.customer else customer_id(review)
        # The review as a new one would arrive: what classification reads, edit or not.
        as_new = Inbound(
            channel=CHANNEL,
            account=self.feed.name,
            external_id=f"{review.id}:v{version}",
            customer=CustomerRef(id=customer, name=review.author or None),
            text=describe(review, _estimate(meta), self.feed.product),
            kind="review",
            metadata=meta,
            thread=review.id,
            reopen_within_s=self.feed.reopen_within_s,
        )
        if fresh:
            kind, text = "review", as_new.text
        elif state is not None and state.deleted:
            kind, text = "review.edited", f"Restored after it was deleted:\n{as_new.text}"
        else:
            assert state is not None
            change = describe_edit(state.rating, state.digests, review)
            kind, text = "review.edited", f"Edited ({change}):\n{as_new.text}"
        result = await self.host.ingest(msgspec.structs.replace(as_new, text=text, kind=kind))
        if kind == "review.edited":
            # Before the record is written: should this fail, the next poll (or the pusher's
            # retry) takes the same version again, and an edit already placed is left alone.
            await self.host.reclassify(result.conversation_id, as_new)
        await self.store.put(
            review.id,
            self._state(review, version=version, customer=customer, conv=result.conversation_id),
        )
        if kind == "review.edited":
            detail = text.split("\n", 1)[0].rstrip(":")
            await self.host.tell_agent(
                result.conversation_id, "review_edited", f"Review {review.id}: {detail}"
            )
            return "edited"
        return "new"

    async def _deleted(self, review_id: str, state: ReviewState) -> Outcome:
        version = state.version + 1 if state.version else 0
        conversation = None
        if state.version:
            conversation = await self.host.open_conversation(
                CHANNEL, self.feed.name, state.customer, thread=review_id
            )
        if conversation is not None:
            # Only an open conversation is told: a closed one stays closed (nothing to
            # answer), and a deletion never opens a conversation of its own.
            await self.host.ingest(
                Inbound(
                    channel=CHANNEL,
                    account=self.feed.name,
                    external_id=f"{review_id}:v{version}",
                    customer=CustomerRef(id=state.customer),
                    text="The reviewer deleted this review; a public answer has nowhere to go.",
                    kind="review.deleted",
                    metadata={"review_id": review_id, "feed": self.feed.name, "deleted": "1"},
                    thread=review_id,
                )
            )
            await self.host.tell_agent(
                conversation.id, "review_deleted", f"Review {review_id} was deleted"
            )
        deleted = ReviewState(
            hash=state.hash,
            version=version,
            rating=state.rating,
            digests=state.digests,
            customer=state.customer,
            conversation=state.conversation,
            product=state.product,
            deleted=True,
        )
        await self.store.put(review_id, deleted)
        return "deleted"

    def _too_old(self, review: Review, now: datetime) -> bool:
        if not self.feed.max_age_s or review.time is None:
            return False
        return review.time < now - timedelta(seconds=self.feed.max_age_s)

    def _state(
        self, review: Review, *, version: int, customer: str = "", conv: str = ""
    ) -> ReviewState:
        return ReviewState(
            hash=review.version_hash(),
            version=version,
            rating=review.rating,
            digests=digests(review),
            customer=customer or customer_id(review),
            conversation=conv,
            product=review.product or self.feed.product,
        )


def _unchanged(state: ReviewState | None, review: Review) -> bool:
    return (
        state is not None
        and not review.deleted
        and not state.deleted
        and state.hash == review.version_hash()
    )
