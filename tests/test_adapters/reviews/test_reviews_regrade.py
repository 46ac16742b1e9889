"""An edited review is graded again while its conversation waits: five stars edited to one
moves it to the complaint queue with the complaint's priority, grade and SLA, keeping its
enqueue time, so it is offered before older praise; edited back, it goes back. A
conversation an agent holds stays where it is."""

from __future__ import annotations

import json
from typing import Any

from harness import RunningGateway, agent_client, running
from helpers import wait_until
from reviews_fake_feed import FakeReview, ago
from reviews_helpers import (
    SECRET,
    adapter_of,
    json_feed,
    post_signed,
    review_agent,
    reviews_config,
    states,
)

from adapters.contract import CustomerRef, Inbound, Reclassified
from gateway import housekeeping
from router.route import Route

REGRADING: dict[str, Any] = {
    "queues": [
        {"name": "general", "channels": ["review"]},
        {"name": "complaints", "skills": {"complaint": 1}},
    ],
    "rules": [
        {
            "name": "差评",
            "channels": ["review"],
            "rating_at_most": 2,
            "queue": "complaints",
            "grade": "A",
        },
        {"name": "投诉", "keywords": ["投诉", "refund"], "queue": "complaints", "grade": "B"},
    ],
    "grades": [
        {"name": "A", "priority": 8, "sla_s": 3600},
        {"name": "B", "priority": 7, "sla_s": 7200},
    ],
    "agents": [review_agent("alice", capacity=1, skills={"complaint": 3})],
}
PUSHED = [{"name": "shop", "webhook_secret": SECRET}]
ANGRY = "Broke after a week. I want a refund, or I 投诉."


async def conversation_id(gw: RunningGateway, review_id: str) -> str:
    state = (await states(gw))[review_id]
    assert state.conversation, f"review {review_id} has no conversation"
    return state.conversation


async def route(gw: RunningGateway, conv: str) -> Route:
    found = await gw.services.router.route(conv)
    assert found is not None
    return found


async def stored_route(gw: RunningGateway, conv: str) -> dict[str, Any]:
    """The route's JSON as the scripts see it, absent keys absent."""
    router = gw.services.router
    return json.loads(await router.redis.hget(router.keys.route, conv))


async def push(gw: RunningGateway, review: dict[str, Any], outcome: str) -> None:
    status, body = await post_signed(gw, "shop", review)
    assert (status, body["results"][0]["outcome"]) == (202, outcome), body


async def test_an_edit_to_one_star_moves_a_waiting_review_ahead_of_older_praise(tenant, redis_url):
    config = reviews_config(tenant, PUSHED, **REGRADING)
    async with running(config, redis_url) as gw:
        router = gw.services.router
        await push(gw, {"id": "old", "author": "Ann", "rating": 5, "text": "Lovely kettle"}, "new")
        edited = {"id": "new", "author": "Bob", "rating": 5, "text": "Works well"}
        await push(gw, edited, "new")
        old, new = await conversation_id(gw, "old"), await conversation_id(gw, "new")
        assert await router.waiting("general") == [old, new]  # nobody is signed in
        enqueued = (await route(gw, new)).enqueued_ms

        # 202 comes once the edit is stored and the conversation placed afresh.
        await push(gw, {**edited, "rating": 1, "text": ANGRY}, "edited")

        moved = await route(gw, new)
        placed = (moved.queue, moved.priority, moved.grade, moved.sla_s)
        assert placed == ("complaints", 8, "A", 3600)
        assert moved.enqueued_ms == enqueued
        assert await router.waiting("complaints") == [new]
        assert await router.waiting("general") == [old]
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer")
            conversation = offer["conversation"]
            assert conversation["id"] == new
            assert (conversation["queue"], conversation["priority"]) == ("complaints", 8)
            assert (conversation["grade"], conversation["sla_s"]) == ("A", 3600)
            kinds = [m["kind"] for m in conversation["messages"]]
            assert kinds == ["review", "review.edited"]
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            await alice.send(type="close", conversation_id=new)
            await alice.expect("closed", conversation_id=new)
            older = await alice.expect("offer")
            assert older["conversation"]["id"] == old
            assert older["conversation"]["queue"] == "general"


async def test_edited_back_it_goes_back_and_an_assigned_one_stays(tenant, redis_url, feed_server):
    review = FakeReview("r1", "Cy", "Nice", rating=5, time=ago(hours=1))
    feed_server.add(review)
    config = reviews_config(tenant, [json_feed(feed_server)], **REGRADING)
    async with running(config, redis_url) as gw:
        await wait_until(lambda: _has_conversation(gw, "r1"), message="r1 taken")
        conv = await conversation_id(gw, "r1")
        enqueued = (await route(gw, conv)).enqueued_ms

        review.rating, review.text = 1, ANGRY
        await wait_until(lambda: _placed(gw, conv, "complaints", 8), message="to complaints")
        review.rating, review.text = 5, "Sorted out the next day, thank you!"
        await wait_until(lambda: _placed(gw, conv, "general", 0), message="back")

        back = await stored_route(gw, conv)
        assert back["e"] == enqueued
        assert not {"g", "sla", "s"} & set(back), back  # the complaint's grade went with it
        assert await gw.services.router.waiting("complaints") == []
        async with agent_client(gw, "alice") as alice:
            offer = await alice.expect("offer", timeout=10)
            assert offer["conversation"]["id"] == conv
            assert offer["conversation"]["grade"] is None
            await alice.send(type="accept", offer_id=offer["offer_id"])
            await alice.expect("assigned")
            # Held by an agent, it stays where it is: the agent is told of the edit.
            review.rating, review.text = 1, ANGRY
            await alice.expect("notice", conversation_id=conv, code="review_edited")
            held = await route(gw, conv)
            assert (held.queue, held.priority) == ("general", 0)
            assert (await states(gw))["r1"].rating == 1


async def _has_conversation(gw: RunningGateway, review_id: str) -> bool:
    state = (await states(gw)).get(review_id)
    return bool(state and state.conversation)


async def _placed(gw: RunningGateway, conv: str, queue: str, priority: int) -> bool:
    found = await route(gw, conv)
    return (found.queue, found.priority) == (queue, priority)


async def test_a_moved_conversation_is_offered_at_once(tenant, redis_url, monkeypatch):
    # Without the once-a-second safety net, only the move itself can route the conversation.
    monkeypatch.setattr(housekeeping, "DISPATCH_EVERY_S", 1e9)
    general = {"name": "general", "channels": ["review"], "skills": {"general": 1}}
    queues = [general, REGRADING["queues"][1]]
    config = reviews_config(tenant, PUSHED, **{**REGRADING, "queues": queues})
    async with running(config, redis_url) as gw:
        async with agent_client(gw, "alice") as alice:
            # alice has room but not the general skill: the praise waits.
            await push(gw, {"id": "p", "author": "Di", "rating": 5, "text": "Great"}, "new")
            conv = await conversation_id(gw, "p")
            assert await gw.services.router.waiting("general") == [conv]
            angry = Inbound(
                channel="review",
                account="shop",
                external_id="p:v2",
                customer=CustomerRef(id="Di"),
                text=f"★☆☆☆☆ 1/5\n{ANGRY}",
                kind="review",
                metadata={"rating": "1", "review_id": "p", "feed": "shop"},
                thread="p",
            )

            got = await adapter_of(gw).host.reclassify(conv, angry)

            assert got == Reclassified(
                moved=True, state="queued", from_queue="general", to_queue="complaints"
            )
            offer = await alice.expect("offer")
            assert (offer["conversation"]["id"], offer["conversation"]["queue"]) == (
                conv,
                "complaints",
            )
            # Offered now: placing it again changes nothing.
            again = await adapter_of(gw).host.reclassify(conv, angry)
            assert again == Reclassified(
                moved=False, state="offered", from_queue="complaints", to_queue="complaints"
            )
