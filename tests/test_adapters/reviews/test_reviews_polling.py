"""Pulled feeds in a real gateway against the fake feed server: every feed kind, paging,
ETag, errors, rate limits, garbage, duplicates, cursor resets, old reviews and restarts."""

from __future__ import annotations

import itertools

from harness import admin_ready, running
from helpers import wait_until
from reviews_fake_feed import GOOGLE_TOKEN, PACKAGE, FakeFeedServer, FakeReview, ago
from reviews_helpers import (
    conversation_of,
    json_feed,
    polled,
    poller_of,
    reviews_config,
    states,
)


def three_reviews(server: FakeFeedServer) -> None:
    server.add(
        FakeReview("r1", "Ann", "Great shop, fast delivery", rating=5, time=ago(hours=3)),
        FakeReview("r2", "Bob", "Parcel arrived damaged", rating=2, title="Meh", time=ago(hours=2)),
        FakeReview("r3", "Cai", "还不错", rating=4, time=ago(hours=1), author_id="u-cai"),
    )


async def test_json_feed_with_a_field_mapping_and_paging(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    config = reviews_config(tenant, [json_feed(feed_server, product="Shop app")])
    async with running(config, redis_url) as gw:
        await polled(gw, 1)
        found = await states(gw)
        assert set(found) == {"r1", "r2", "r3"}
        # Two pages of two: the second page came through the paging cursor.
        assert [r.query.get("page") for r in feed_server.seen("json")[:2]] == [None, "2"]
        bob = await conversation_of(gw, "r2")
        assert bob.channel == "review" and bob.account == "shop"
        assert bob.customer.id == "Bob" and len(bob.messages) == 1
        message = bob.messages[0]
        assert message.kind == "review"
        assert message.text.startswith("★★☆☆☆ 2/5 · Meh\nParcel arrived damaged")
        assert "Shop app" in message.text
        cai = await conversation_of(gw, "r3")
        assert cai.customer.id == "u-cai" and cai.customer.name == "Cai"
        # Each review is a conversation of its own.
        assert len({s.conversation for s in found.values()}) == 3


async def test_rss_feed(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    feed = {
        "name": "shop",
        "kind": "rss",
        "url": f"{feed_server.base}/rss",
        "poll_s": 0.1,
        "rss_rating": "rv_rating",
    }
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1)
        assert set(await states(gw)) == {"r1", "r2", "r3"}
        bob = await conversation_of(gw, "r2")
        text = bob.messages[0].text
        # The HTML description became text; the link is kept for the agent.
        assert text.startswith("★★☆☆☆ 2/5 · Meh\nParcel arrived damaged\n— http://")
        assert "<p>" not in text


async def test_atom_feed_without_ratings_gets_estimates(tenant, redis_url, feed_server):
    feed_server.add(
        FakeReview(
            "a1", "Dee", "Terrible app, it crashes every time. Waste of money!", rating=None
        ),
        FakeReview("a2", "Eve", "Love it, works great", rating=None),
    )
    # Atom is kind "rss" too: feedparser reads both.
    feed = {"name": "shop", "kind": "rss", "url": f"{feed_server.base}/atom", "poll_s": 0.1}
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1)
        found = await states(gw)
        assert set(found) == {"urn:review:a1", "urn:review:a2"}
        assert all(s.rating is None for s in found.values())
        dee = await conversation_of(gw, "urn:review:a1")
        assert dee.messages[0].text.startswith("No rating (about 1/5 from its words)")
        eve = await conversation_of(gw, "urn:review:a2")
        assert eve.messages[0].text.startswith("No rating (about 5/5 from its words)")


async def test_app_store_feed_pages_through_its_xml_next_links(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    feed = {"name": "ios", "kind": "appstore", "url": feed_server.appstore_url(1), "poll_s": 0.1}
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1, feed="ios")
        found = await states(gw, "ios")
        assert set(found) == {"r1", "r2", "r3"}
        # Page 2 was asked for as JSON, though the feed linked to its XML twin; it held one
        # review, as an object rather than a list.
        paths = [r.path for r in feed_server.seen("appstore")]
        assert paths[1].endswith("/page=2/id=1234567/sortby=mostrecent/json")
        cai = await conversation_of(gw, "r3", feed="ios")
        assert cai.customer.id == "https://itunes.apple.com/us/reviews/idu-cai"
        assert cai.customer.name == "Cai"
        assert cai.messages[0].text.startswith("★★★★☆ 4/5\n还不错")


def play_feed(server: FakeFeedServer, token: str = GOOGLE_TOKEN) -> dict:
    return {
        "name": "android",
        "kind": "google_play",
        "poll_s": 0.1,
        "google_play": {"package": PACKAGE, "api_base": server.base, "access_token": token},
    }


async def test_google_play_reviews_list_with_token_paging(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    async with running(reviews_config(tenant, [play_feed(feed_server)]), redis_url) as gw:
        await polled(gw, 1, feed="android")
        assert set(await states(gw, "android")) == {"r1", "r2", "r3"}
        pages = feed_server.seen("play")
        assert pages[0].query.get("token") is None and pages[1].query["token"] == "2"
        assert pages[0].headers["Authorization"] == f"Bearer {GOOGLE_TOKEN}"
        bob = await conversation_of(gw, "r2", feed="android")
        # "title\ttext" split into title and text.
        assert bob.messages[0].text.startswith("★★☆☆☆ 2/5 · Meh\nParcel arrived damaged")
        assert PACKAGE in bob.messages[0].text


async def test_google_play_refused_token_is_a_failed_poll(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    async with running(reviews_config(tenant, [play_feed(feed_server, "wrong")]), redis_url) as gw:
        await polled(gw, 1, feed="android")
        poller = poller_of(gw, "android")
        assert poller.last_report is not None
        assert "HTTP 401" in poller.last_report.error
        assert await states(gw, "android") == {}
        state = await poller.cursor.load()
        assert state.failures >= 1 and "UNAUTHENTICATED" in state.last_error
        # A feed that fails is still attempted: the gateway is ready, the error is logged.
        assert await admin_ready(gw.admin_port)


async def test_etag_makes_a_repoll_a_304(tenant, redis_url, feed_server):
    feed_server.page_size = 10
    three_reviews(feed_server)
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await polled(gw, 2)
        first, second = feed_server.seen("json")[:2]
        assert first.status == 200 and "If-None-Match" not in first.headers
        assert second.headers["If-None-Match"] and second.status == 304
        assert poller_of(gw).last_report.not_modified  # type: ignore[union-attr]
        # A new review changes the page, and so its ETag.
        feed_server.add(FakeReview("r4", "Fay", "Where is my order?", rating=3))
        await wait_until(lambda: any(r.status == 200 for r in feed_server.seen("json")[2:]))
        await wait_until(lambda: _has(gw, "r4"))


async def test_last_modified_makes_a_repoll_a_304(tenant, redis_url, feed_server):
    feed_server.page_size = 10
    feed_server.etags, feed_server.last_modified = False, True
    three_reviews(feed_server)
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await polled(gw, 2)
        first, second = feed_server.seen("json")[:2]
        assert "If-Modified-Since" not in first.headers
        assert second.headers["If-Modified-Since"] and second.status == 304
        feed_server.add(FakeReview("r4", "Fay", "Where is my order?", rating=3))
        await wait_until(lambda: _has(gw, "r4"))


async def _has(gw, review_id: str, feed: str = "shop") -> bool:
    return review_id in await states(gw, feed)


async def test_server_errors_back_off_then_recover(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    feed_server.answer_next("json", 500, "upstream broke", times=3)
    config = reviews_config(tenant, [json_feed(feed_server, poll_s=5.0)], backoff_base_s=0.1)
    async with running(config, redis_url) as gw:
        await wait_until(lambda: _has(gw, "r3"), timeout=10)
        calls = feed_server.seen("json")
        assert [c.status for c in calls[:3]] == [500, 500, 500]
        gaps = [b.at - a.at for a, b in itertools.pairwise(calls[:4])]
        # Doubling from 0.1 s: 0.1, 0.2, 0.4 at the least.
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4
        # The state is saved after the page's reviews are taken, so r3 may land first.
        await wait_until(lambda: _recovered(gw), timeout=10)


async def _recovered(gw) -> bool:
    state = await poller_of(gw).cursor.load()
    return state.failures == 0 and state.last_error == ""


async def test_429_retry_after_is_honoured(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    feed_server.answer_next("json", 429, "slow down", headers={"Retry-After": "1"})
    config = reviews_config(tenant, [json_feed(feed_server)], backoff_base_s=0.05)
    async with running(config, redis_url) as gw:
        await wait_until(lambda: _has(gw, "r3"), timeout=10)
        limited, after = feed_server.seen("json")[:2]
        assert limited.status == 429
        # Not before the second the feed asked for (the backoff alone would be 0.05 s).
        assert after.at - limited.at >= 0.98


async def test_garbage_and_truncated_pages_lose_nothing(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    feed_server.answer_next("json", 200, "<html>502 Bad Gateway</html>")
    # Then page 2 comes back cut off: page 1 is taken, page 2 waits for the next poll.
    feed_server.answer_next(
        "json",
        200,
        '{"data": {"reviews": [{"review_id": "r1", "body": "Great sh',
        match={"page": "2"},
    )
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await polled(gw, 3)
        reports = poller_of(gw)
        assert set(await states(gw)) == {"r1", "r2", "r3"}
        errors = [r.status for r in feed_server.seen("json")]
        assert errors[:3] == [200, 200, 200]  # garbage and truncation come with a 200
        assert reports.polls >= 3
        r1 = await conversation_of(gw, "r1")
        assert [m.text for m in r1.messages] == [r1.messages[0].text]  # one, whole
        assert r1.messages[0].text.startswith("★★★★★ 5/5\nGreat shop, fast delivery")


async def test_duplicate_ids_in_a_listing_make_one_conversation(tenant, redis_url, feed_server):
    feed_server.page_size = 2
    feed_server.add(
        FakeReview("d1", "Gus", "First listing", rating=1, time=ago(hours=2)),
        FakeReview("d2", "Hal", "Other", rating=5, time=ago(hours=1)),
    )
    feed_server.reviews.append(FakeReview("d1", "Gus", "First listing", rating=1))  # page 2
    feed_server.reviews.insert(1, FakeReview("d2", "Hal", "Other", rating=5))  # page 1 twice
    async with running(reviews_config(tenant, [json_feed(feed_server)]), redis_url) as gw:
        await polled(gw, 2)
        found = await states(gw)
        assert set(found) == {"d1", "d2"} and {s.version for s in found.values()} == {1}
        for review_id in ("d1", "d2"):
            assert len((await conversation_of(gw, review_id)).messages) == 1


async def test_a_refused_cursor_or_a_feed_that_starts_over_repeats_nothing(
    tenant, redis_url, feed_server
):
    three_reviews(feed_server)
    feed = json_feed(feed_server, cursor="time", cursor_param="since")
    async with running(reviews_config(tenant, [feed]), redis_url) as gw:
        await polled(gw, 1)
        before = await states(gw)
        assert set(before) == {"r1", "r2", "r3"}
        await polled(gw, 2)
        assert "since" in feed_server.seen("json")[-1].query  # the cursor is in use
        # The feed forgets our cursor (410) and lists everything again.
        feed_server.refuse_cursor = True
        count = len(feed_server.seen("json"))
        await wait_until(lambda: any(r.status == 410 for r in feed_server.seen("json")[count:]))
        polls = poller_of(gw).polls
        await polled(gw, polls + 1)
        feed_server.refuse_cursor = False
        # And a feed that ignores "since" altogether, starting over each time.
        feed_server.ignore_since = True
        await polled(gw, poller_of(gw).polls + 2)
        after = await states(gw)
        assert after == before
        for review_id in before:
            assert len((await conversation_of(gw, review_id)).messages) == 1
        feed_server.add(FakeReview("r4", "Ivy", "New one", rating=3))
        await wait_until(lambda: _has(gw, "r4"))


async def test_a_flood_of_old_reviews_on_the_first_poll_is_recorded_not_routed(
    tenant, redis_url, feed_server
):
    feed_server.page_size = 50
    for i in range(30):
        feed_server.add(FakeReview(f"old{i}", f"u{i}", "old news", rating=1, time=ago(days=60 - i)))
    feed_server.add(FakeReview("new", "Jo", "Today's problem", rating=1, time=ago(minutes=5)))
    config = reviews_config(tenant, [json_feed(feed_server, max_age_s=7 * 86400)])
    async with running(config, redis_url) as gw:
        await polled(gw, 1)
        found = await states(gw)
        assert len(found) == 31
        assert [i for i, s in found.items() if s.conversation] == ["new"]
        assert all(s.version == 0 for i, s in found.items() if i != "new")
        assert poller_of(gw).last_report.outcomes == {"old": 30, "new": 1}  # type: ignore[union-attr]
        queued = await gw.services.router.conversation((found["new"]).conversation)
        assert queued is not None and queued.state == "queued"


async def test_baseline_first_poll_only_records(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    config = reviews_config(tenant, [json_feed(feed_server, baseline_first_poll=True, max_age_s=0)])
    async with running(config, redis_url) as gw:
        await polled(gw, 1)
        found = await states(gw)
        assert set(found) == {"r1", "r2", "r3"}
        assert not any(s.conversation for s in found.values())
        feed_server.add(FakeReview("r4", "Kim", "After the baseline", rating=2))
        await wait_until(lambda: _has(gw, "r4"))
        await wait_until(lambda: _conversation_made(gw, "r4"))


async def _conversation_made(gw, review_id: str) -> bool:
    return bool((await states(gw)).get(review_id) and (await states(gw))[review_id].conversation)


async def test_repolls_and_a_gateway_restart_repeat_nothing(tenant, redis_url, feed_server):
    three_reviews(feed_server)
    # The router's own dedupe forgets at once: only the channel's record keeps reviews from
    # coming back.
    config = reviews_config(tenant, [json_feed(feed_server)], routing={"dedupe_ttl_s": 0.001})
    feed_server.etags = False  # every poll reads and takes the whole listing
    feed_server.page_size = 10
    async with running(config, redis_url) as gw:
        await polled(gw, 3)
        before = await states(gw)
        assert {s.version for s in before.values()} == {1}
    async with running(config, redis_url) as gw:
        await polled(gw, 2)
        assert await states(gw) == before
        for review_id in before:
            conversation = await conversation_of(gw, review_id)
            assert len(conversation.messages) == 1
        assert poller_of(gw).last_report.outcomes == {"unchanged": 3}  # type: ignore[union-attr]
