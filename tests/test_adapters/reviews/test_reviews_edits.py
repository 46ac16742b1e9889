"""Edited and deleted reviews: the same conversation, the agent told, deletions marked."""

from __future__ import annotations

from harness import agent_client, running
from helpers import wait_until
from reviews_fake_feed import FakeFeedServer, FakeReview, ago
from reviews_helpers import (
    SECRET,
    conversation_of,
    json_feed,
    polled,
    poller_of,
    post_signed,
    reviews_config,
    states,
)


async def accept_offer(alice) -> str:
    offer = await alice.expect("offer")
    await alice.send(type="accept", offer_id=offer["offer_id"])
    await alice.expect("assigned")
    return offer["conversation"]["id"]


def one_review(server: FakeFeedServer) -> FakeReview:
    review = FakeReview("e1", "Ann", "Nice shop", rating=5, title="Good", time=ago(hours=1))
    server.add(review)
    return review


async def test_an_edit_is_a_new_message_in_the_same_conversation_and_the_agent_is_told(
    tenant, redis_url, feed_server
):
    review = one_review(feed_server)
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        async with agent_client(gw, "alice") as alice:
            conversation_id = await accept_offer(alice)
            review.rating, review.text = 1, "Changed my mind: the parcel never came"
            frame = await alice.expect("message", conversation_id=conversation_id)
            message = frame["message"]
            assert message["kind"] == "review.edited"
            assert message["text"].startswith(
                "Edited (★5 → ★1, new text):\n★☆☆☆☆ 1/5 · Good\nChanged my mind"
            )
            notice = await alice.expect("notice", conversation_id=conversation_id)
            assert notice["code"] == "review_edited"
            assert "★5 → ★1" in notice["detail"]
            state = (await states(gw))["e1"]
            assert (state.version, state.rating, state.conversation) == (2, 1.0, conversation_id)
            # Re-polls of the edited version change nothing.
            await polled(gw, poller_polls(gw) + 2)
            conversation = await conversation_of(gw, "e1")
            assert [m.kind for m in conversation.messages] == ["review", "review.edited"]


def poller_polls(gw) -> int:
    return poller_of(gw).polls


async def test_a_tombstone_marks_the_review_deleted_and_tells_the_agent(
    tenant, redis_url, feed_server
):
    review = one_review(feed_server)
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        async with agent_client(gw, "alice") as alice:
            conversation_id = await accept_offer(alice)
            review.deleted = True
            frame = await alice.expect("message", conversation_id=conversation_id)
            assert frame["message"]["kind"] == "review.deleted"
            notice = await alice.expect("notice", conversation_id=conversation_id)
            assert notice["code"] == "review_deleted"
            state = (await states(gw))["e1"]
            assert state.deleted and state.version == 2
            await polled(gw, poller_polls(gw) + 2)
            assert len((await conversation_of(gw, "e1")).messages) == 2
            # The agent's answer has nowhere to go.
            await alice.send(
                type="reply", conversation_id=conversation_id, text="sorry", client_msg_id="c1"
            )
            error = await alice.expect("error", client_msg_id="c1")
            assert "review_deleted" in error["detail"]


async def test_a_review_missing_from_a_complete_listing_is_deleted(tenant, redis_url, feed_server):
    feed_server.add(
        FakeReview("k1", "Ann", "One", rating=4, time=ago(hours=2)),
        FakeReview("k2", "Bob", "Two", rating=3, time=ago(hours=1)),
    )
    feed = {
        "name": "shop",
        "url": f"{feed_server.base}/plain",
        "poll_s": 0.1,
        "complete": True,
    }
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1)
        assert set(await states(gw)) == {"k1", "k2"}
        # A listing that comes back empty is a feed's bad day, not two deletions.
        saved = list(feed_server.reviews)
        feed_server.reviews.clear()
        await polled(gw, poller_polls(gw) + 2)
        assert not any(s.deleted for s in (await states(gw)).values())
        feed_server.reviews[:] = [r for r in saved if r.id == "k2"]
        await wait_until(lambda: _deleted(gw, "k1"))
        conversation = await conversation_of(gw, "k1")
        assert [m.kind for m in conversation.messages] == ["review", "review.deleted"]
        assert not (await states(gw))["k2"].deleted


async def _deleted(gw, review_id: str) -> bool:
    state = (await states(gw)).get(review_id)
    return bool(state and state.deleted)


async def test_webhook_deletion_edit_after_close_reopens_deletion_after_close_does_not(
    tenant, redis_url
):
    feeds = [{"name": "shop", "webhook_secret": SECRET}]
    async with running(reviews_config(tenant, feeds), redis_url) as gw:
        first = {"id": "p1", "author": "Cy", "rating": 4, "text": "fine"}
        assert (await post_signed(gw, "shop", first))[0] == 202
        async with agent_client(gw, "alice") as alice:
            conversation_id = await accept_offer(alice)
            await alice.send(type="close", conversation_id=conversation_id)
            await alice.expect("closed", conversation_id=conversation_id)
            # An edit after the close reopens the same conversation (reopen_within_s).
            edited = {**first, "rating": 2, "text": "not fine after all"}
            status, body = await post_signed(gw, "shop", edited)
            assert (status, body["results"][0]["outcome"]) == (202, "edited")
            offer = await alice.expect("offer")
            assert offer["conversation"]["id"] == conversation_id
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(type="close", conversation_id=conversation_id)
            await alice.expect("closed", conversation_id=conversation_id)
        # A deletion after the close is recorded but opens nothing.
        status, body = await post_signed(gw, "shop", {"id": "p1", "deleted": True})
        assert (status, body["results"][0]["outcome"]) == (202, "deleted")
        conversation = await gw.services.router.conversation(conversation_id)
        assert conversation is not None and conversation.state == "closed"
        assert [m.kind for m in conversation.messages] == ["review", "review.edited"]
        assert (await states(gw))["p1"].deleted
        # A tombstone for a review never seen is nothing.
        status, body = await post_signed(gw, "shop", {"id": "ghost", "deleted": "true"})
        assert (status, body["results"][0]["outcome"]) == (202, "ignored")


async def test_an_unreadable_item_in_a_complete_listing_deletes_nothing(
    tenant, redis_url, feed_server
):
    feed_server.add(
        FakeReview("k1", "Ann", "One", rating=4, time=ago(hours=2)),
        FakeReview("k2", "Bob", "Two", rating=3, time=ago(hours=1)),
    )
    feed = {"name": "shop", "url": f"{feed_server.base}/plain", "poll_s": 0.1, "complete": True}
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1)
        # k1 comes back with a rating that is no number: left out, but not deleted.
        body = '[{"id": "k1", "author": "Ann", "text": "One", "rating": "four"},' + (
            ' {"id": "k2", "author": "Bob", "text": "Two", "rating": 3}]'
        )
        feed_server.answer_next("plain", 200, body, times=3)
        await wait_until(lambda: feed_server.forced_left("plain") == 0)
        await polled(gw, poller_polls(gw) + 1)
        assert not any(s.deleted for s in (await states(gw)).values())
