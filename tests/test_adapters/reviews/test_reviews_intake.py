"""Taking reviews with the kit's in-memory host on the real Redis: what the messages carry
(metadata that routing reads) and how versions, edits and deletions turn into external ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from adapters.reviews.config import FeedConfig
from adapters.reviews.intake import Intake
from adapters.reviews.review import Review
from adapters.reviews.store import ReviewStore
from adapters.testing import MemoryHost


@pytest.fixture
def host(redis, tenant) -> MemoryHost:
    return MemoryHost(tenant=tenant, redis=redis)


def intake(host, **fields) -> Intake:
    feed = msgspec.convert(
        {"name": "shop", "url": "https://x/", "product": "Kettle", **fields}, FeedConfig
    )
    return Intake(host, feed, ReviewStore(host, "shop"))


async def test_metadata_carries_rating_sentiment_and_place(host):
    take = intake(host)
    when = datetime.now(UTC) - timedelta(hours=1)
    review = Review(
        id="r1",
        author="Ann",
        rating=1,
        text="差评",
        url="https://s/r1",
        time=when,
        extra={"app_version": "2.0"},
    )
    assert await take.take(review, polled=True) == "new"
    inbound = host.ingested[0]
    assert (inbound.channel, inbound.account, inbound.external_id) == ("review", "shop", "r1:v1")
    assert (inbound.thread, inbound.kind, inbound.customer.id) == ("r1", "review", "Ann")
    meta = inbound.metadata
    assert meta["rating"] == "1" and meta["rating_source"] == "feed"
    assert float(meta["sentiment"]) < 0
    assert (meta["product"], meta["url"], meta["app_version"]) == ("Kettle", "https://s/r1", "2.0")
    assert meta["review_time"] == when.isoformat()


async def test_unrated_reviews_get_an_estimated_rating_unless_told_not_to(host):
    await intake(host).take(Review(id="u1", author="Bo", text="垃圾，天天闪退，骗钱"), polled=False)
    assert host.ingested[-1].metadata["rating"] == "1"
    assert host.ingested[-1].metadata["rating_source"] == "sentiment"
    await intake(host, estimate_rating=False).take(
        Review(id="u2", author="Bo", text="meh"), polled=False
    )
    assert "rating" not in host.ingested[-1].metadata


async def test_versions_edits_and_deletions(host):
    take = intake(host)
    first = Review(id="r1", author="Ann", rating=5, text="good")
    assert await take.take(first, polled=True) == "new"
    assert await take.take(first, polled=True) == "unchanged"
    edited = Review(id="r1", author="Ann (renamed)", rating=2, text="good until it broke")
    assert await take.take(edited, polled=True) == "edited"
    inbound = host.ingested[-1]
    assert inbound.external_id == "r1:v2" and inbound.kind == "review.edited"
    assert inbound.customer.id == "Ann"  # the conversation stays the first author's
    assert inbound.text.startswith("Edited (★5 → ★2, new text):")
    r1 = host.conversation("review", "shop", "Ann", thread="r1").id
    assert host.told == [(r1, "review_edited", "Review r1: Edited (★5 → ★2, new text)")]
    # The edit is classified as the review would be if it were new: no "Edited" line.
    [(conversation_id, as_new)] = host.reclassified
    assert conversation_id == r1 and as_new.kind == "review"
    assert as_new.text == "★★☆☆☆ 2/5\ngood until it broke\n— Kettle"
    assert (as_new.metadata, as_new.thread) == (inbound.metadata, "r1")
    assert await take.take(Review(id="r1", deleted=True), polled=False) == "deleted"
    assert host.ingested[-1].external_id == "r1:v3"
    assert host.ingested[-1].kind == "review.deleted"
    assert host.told[-1][:2] == (r1, "review_deleted")
    assert await take.take(Review(id="r1", deleted=True), polled=False) == "ignored"
    # It comes back: restored, a new version.
    assert await take.take(edited, polled=True) == "edited"
    assert host.ingested[-1].external_id == "r1:v4"
    assert host.ingested[-1].text.startswith("Restored after it was deleted:")
    # New versions and deletions were not reclassified; the restored one was.
    assert [c for c, _ in host.reclassified] == [r1, r1]
    assert host.reclassified[-1][1].text == as_new.text


async def test_old_reviews_are_recorded_quietly_and_a_late_edit_is_new(host):
    take = intake(host, max_age_s=86400)
    old = Review(
        id="o1", author="Cy", rating=1, text="ancient", time=datetime(2020, 1, 1, tzinfo=UTC)
    )
    assert await take.take(old, polled=True) == "old"
    assert await take.take(old, polled=True) == "unchanged"
    assert host.ingested == []
    # Pushed reviews are taken whatever their age: the sender chose to send them.
    assert (
        await take.take(Review(id="o2", author="Cy", text="x", time=old.time), polled=False)
        == "new"
    )
    rewritten = Review(id="o1", author="Cy", rating=2, text="still bad", time=datetime.now(UTC))
    assert await take.take(rewritten, polled=True) == "new"
    assert host.ingested[-1].external_id == "o1:v1" and host.ingested[-1].kind == "review"
