"""End to end: reviews ranked by rating (or by sentiment when unrated) reach an agent, and
the agent's public answer reaches the feed's reply endpoint, or the refusal reaches the
agent."""

from __future__ import annotations

import pytest
from harness import agent_client, running
from helpers import wait_until
from reviews_fake_feed import GOOGLE_TOKEN, PACKAGE, FakeFeedServer, FakeReview, ago
from reviews_helpers import (
    SECRET,
    adapter_of,
    conversation_of,
    json_feed,
    post_signed,
    review_agent,
    reviews_config,
    states,
)

from adapters.contract import CustomerRef, Outbound

COMPLAINTS = {
    "queues": [
        {"name": "general", "channels": ["review"]},
        {"name": "complaints", "skills": {"complaint": 1}},
    ],
    "rules": [
        {
            "name": "bad",
            "channels": ["review"],
            "rating_at_most": 2,
            "queue": "complaints",
            "grade": "A",
        }
    ],
    "grades": [{"name": "A", "priority": 8, "sla_s": 3600}],
    "agents": [review_agent("alice", capacity=1, skills={"complaint": 3})],
}


async def both_taken(gw, *ids: str, feed: str = "shop") -> None:
    async def taken() -> bool:
        found = await states(gw, feed)
        return all(i in found and found[i].conversation for i in ids)

    await wait_until(taken, message=f"{ids} taken")


async def test_a_one_star_review_is_offered_first_with_complaint_priority_and_answered(
    tenant, redis_url, feed_server
):
    feed_server.add(
        FakeReview("five", "Ann", "Lovely shop", rating=5, time=ago(hours=5)),
        FakeReview("one", "Bob", "Broken on arrival", rating=1, time=ago(minutes=5)),
    )
    config = reviews_config(tenant, [json_feed(feed_server)], **COMPLAINTS)
    async with running(config, redis_url) as gw:
        await both_taken(gw, "five", "one")
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            conversation = offer["conversation"]
            assert conversation["messages"][0]["text"].startswith("★☆☆☆☆ 1/5")
            assert (conversation["queue"], conversation["priority"]) == ("complaints", 8)
            assert conversation["grade"] == "A" and conversation["sla_s"] == 3600
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(
                type="reply",
                conversation_id=conversation["id"],
                text="We are sorry: a replacement is on its way.",
                client_msg_id="c1",
            )
            await alice.expect("reply_ack", client_msg_id="c1")
            assert len(feed_server.replies) == 1
            posted = feed_server.replies[0]
            assert posted.path == "/reply/one"
            assert posted.json() == {
                "review_id": "one",
                "text": "We are sorry: a replacement is on its way.",
            }
            await alice.send(type="close", conversation_id=conversation["id"])
            await alice.expect("closed", conversation_id=conversation["id"])
            older = await alice.expect("offer")
            assert older["conversation"]["queue"] == "general"
            assert older["conversation"]["priority"] == 0
            assert older["conversation"]["messages"][0]["text"].startswith("★★★★★ 5/5")


async def test_an_unrated_negative_review_outranks_an_older_positive_one(tenant, redis_url):
    feeds = [{"name": "shop", "webhook_secret": SECRET}]
    config = reviews_config(tenant, feeds, **COMPLAINTS)
    async with running(config, redis_url) as gw:
        happy = {"id": "h", "author": "Di", "text": "Great app, love it, works perfectly!"}
        angry = {"id": "a", "author": "Ed", "text": "垃圾软件，天天闪退，退款也不理人，差评！"}
        assert (await post_signed(gw, "shop", happy))[0] == 202
        assert (await post_signed(gw, "shop", angry))[0] == 202
        found = await states(gw)
        assert found["h"].rating is None and found["a"].rating is None
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            conversation = offer["conversation"]
            assert conversation["customer"]["id"] == "Ed"
            assert (conversation["queue"], conversation["priority"]) == ("complaints", 8)
            assert conversation["messages"][0]["text"].startswith("No rating (about 1/5")


async def test_a_refused_answer_is_an_error_frame_and_the_retry_posts_once(
    tenant, redis_url, feed_server
):
    feed_server.add(FakeReview("r1", "Fu", "Where is my refund?", rating=2))
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await both_taken(gw, "r1")
        adapter_of(gw)
        feed_server.answer_next(
            "reply",
            403,
            '{"error": "reply_window_closed", "message": "answers close after 30 days"}',
        )
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            conversation_id = offer["conversation"]["id"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(
                type="reply", conversation_id=conversation_id, text="Refunded.", client_msg_id="c1"
            )
            error = await alice.expect("error", client_msg_id="c1")
            assert error["code"] == "channel_error"
            assert "reply_window_closed" in error["detail"]
            assert "answers close after 30 days" in error["detail"]
            await alice.send(
                type="reply", conversation_id=conversation_id, text="Refunded.", client_msg_id="c1"
            )
            await alice.expect("reply_ack", client_msg_id="c1")
            assert [r.status for r in feed_server.replies] == [403, 201]


async def test_google_play_answers_go_to_reviews_reply(tenant, redis_url, feed_server):
    feed_server.add(FakeReview("gp1", "A Google user", "Crashes on start", rating=1, title="Bad"))
    feed = {
        "name": "android",
        "kind": "google_play",
        "poll_s": 0.1,
        "google_play": {
            "package": PACKAGE,
            "api_base": feed_server.base,
            "access_token": GOOGLE_TOKEN,
        },
    }
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await both_taken(gw, "gp1", feed="android")
        adapter_of(gw)
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            conversation_id = offer["conversation"]["id"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(
                type="reply", conversation_id=conversation_id, text="x" * 351, client_msg_id="long"
            )
            error = await alice.expect("error", client_msg_id="long")
            assert "too_long" in error["detail"]
            await alice.send(
                type="reply",
                conversation_id=conversation_id,
                text="Fixed in 4.5.7, please update.",
                client_msg_id="c2",
            )
            await alice.expect("reply_ack", client_msg_id="c2")
        posted = feed_server.replies[-1]
        assert posted.path == f"/androidpublisher/v3/applications/{PACKAGE}/reviews/gp1:reply"
        assert posted.headers["Authorization"] == f"Bearer {GOOGLE_TOKEN}"
        assert posted.json() == {"replyText": "Fixed in 4.5.7, please update."}
        assert len(feed_server.replies) == 1  # the long one was never sent


async def test_a_send_is_idempotent_and_automatic_messages_stay_private(
    tenant, redis_url, feed_server: FakeFeedServer
):
    feed_server.add(FakeReview("r1", "Gil", "Slow delivery", rating=3))
    queues = [{"name": "general", "channels": ["review"], "position_auto_reply": True}]
    config = reviews_config(tenant, [json_feed(feed_server)], queues=queues)
    async with running(config, redis_url) as gw:
        await both_taken(gw, "r1")
        conversation = await conversation_of(gw, "r1")
        # The queue-position auto-reply is in the history, but was not posted publicly.
        assert [m.direction for m in conversation.messages] == ["in", "out"]
        assert feed_server.replies == []
        adapter = adapter_of(gw)
        outbound = Outbound(
            channel="review",
            account="shop",
            conversation_id=conversation.id,
            customer=CustomerRef(id="Gil"),
            message_id="m-1",
            text="Thanks for your patience.",
            agent_name="Alice",
        )
        await adapter.send(outbound)
        await adapter.send(outbound)  # a retry of the same message
        assert len(feed_server.replies) == 1


@pytest.mark.parametrize("code", [500, 429])
async def test_retryable_refusals_are_marked_so(tenant, redis_url, feed_server, code):
    from adapters.contract import DeliveryError

    feed_server.add(FakeReview("r1", "Hu", "Meh", rating=3))
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await both_taken(gw, "r1")
        conversation = await conversation_of(gw, "r1")
        feed_server.answer_next("reply", code, "try later")
        outbound = Outbound(
            channel="review",
            account="shop",
            conversation_id=conversation.id,
            customer=CustomerRef(id="Hu"),
            message_id="m-2",
            text="Hello",
            agent_name="Alice",
        )
        with pytest.raises(DeliveryError) as refused:
            await adapter_of(gw).send(outbound)
        assert refused.value.retryable and refused.value.code == f"http_{code}"
        await adapter_of(gw).send(outbound)  # the claim was released: the retry posts
        assert [r.status for r in feed_server.replies] == [code, 201]
