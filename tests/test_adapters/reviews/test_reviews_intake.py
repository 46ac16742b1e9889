"""Taking reviews with a stub host on the real Redis: what the messages carry (metadata that
routing reads) and how versions, edits and deletions turn into external ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from adapters.contract import Inbound, IngestResult, Reclassified, StoredMessage
from adapters.reviews.config import FeedConfig
from adapters.reviews.intake import Intake
from adapters.reviews.review import Review
from adapters.reviews.store import ReviewStore


class StubHost:
    def __init__(self, redis, tenant: str) -> None:
        self.redis, self.tenant, self.node_id = redis, tenant, "n1"
        self.ingested: list = []
        self.told: list[tuple[str, str, str]] = []
        self.reclassified: list[tuple[str, Inbound]] = []
        self.open = True

    def key(self, adapter: str, *parts: str) -> str:
        return ":".join([f"zt:{{{self.tenant}}}:ad:{adapter}", *parts])

    async def ingest(self, inbound):
        self.ingested.append(inbound)
        message = StoredMessage(
            id="m", direction="in", text=inbound.text, sent_at=datetime.now(UTC)
        )
        return IngestResult(conversation_id=f"c-{inbound.thread}", message=message)

    async def open_conversation(self, channel, account, customer_id, thread=None):
        from adapters.contract import OpenConversation

        return OpenConversation(id=f"c-{thread}", messages=[]) if self.open else None

    async def tell_agent(self, conversation_id: str, code: str, detail: str) -> None:
        self.told.append((conversation_id, code, detail))

    async def reclassify(self, conversation_id: str, inbound: Inbound) -> Reclassified:
        self.reclassified.append((conversation_id, inbound))
        return Reclassified(moved=False, state="queued")


@pytest.fixture
def host(redis, tenant):
    return StubHost(redis, tenant)


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
    assert host.told == [("c-r1", "review_edited", "Review r1: Edited (★5 → ★2, new text)")]
    # The edit is classified as the review would be if it were new: no "Edited" line.
    [(conversation_id, as_new)] = host.reclassified
    assert conversation_id == "c-r1" and as_new.kind == "review"
    assert as_new.text == "★★☆☆☆ 2/5\ngood until it broke\n— Kettle"
    assert (as_new.metadata, as_new.thread) == (inbound.metadata, "r1")
    assert await take.take(Review(id="r1", deleted=True), polled=False) == "deleted"
    assert host.ingested[-1].external_id == "r1:v3"
    assert host.ingested[-1].kind == "review.deleted"
    assert host.told[-1][:2] == ("c-r1", "review_deleted")
    assert await take.take(Review(id="r1", deleted=True), polled=False) == "ignored"
    # It comes back: restored, a new version.
    assert await take.take(edited, polled=True) == "edited"
    assert host.ingested[-1].external_id == "r1:v4"
    assert host.ingested[-1].text.startswith("Restored after it was deleted:")
    # New versions and deletions were not reclassified; the restored one was.
    assert [c for c, _ in host.reclassified] == ["c-r1", "c-r1"]
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
