"""POST /reviews/{feed}: signatures, staleness, replays, malformed and oversized bodies."""

from __future__ import annotations

import json
import logging
import time

import pytest
from harness import running
from helpers import replica_of, skip_without_redis_server
from reviews_helpers import SECRET, post_signed, reviews_config, states

from adapters.reviews.webhook import sign
from gateway.redis.embedded import RedisServer


@pytest.fixture
def config(tenant):
    feeds = [
        {"name": "shop", "webhook_secret": SECRET, "timestamp_tolerance_s": 60},
        # A feed with a mapping reads pushes through it too.
        {
            "name": "mapped",
            "webhook_secret": SECRET,
            "fields": {"id": "rid", "author": "who.name", "text": "body", "rating": "score"},
            "rating_scale": 10,
        },
    ]
    return reviews_config(tenant, feeds, max_body_bytes=4096, max_reviews_per_request=3)


REVIEW = {"id": "w1", "author": "Lin", "rating": 1, "text": "差评，客服不理人", "title": "投诉"}


async def test_a_signed_review_is_stored_and_202(config, redis_url):
    async with running(config, redis_url) as gw:
        status, body = await post_signed(gw, "shop", REVIEW)
        assert status == 202
        assert body == {"stored": 1, "results": [{"id": "w1", "outcome": "new"}]}
        found = await states(gw)
        conversation = await gw.services.router.conversation(found["w1"].conversation)
        assert conversation is not None
        assert conversation.messages[0].text.startswith("★☆☆☆☆ 1/5 · 投诉\n差评，客服不理人")
        # A list, with the same review again (unchanged) and a new one.
        status, body = await post_signed(
            gw,
            "shop",
            [REVIEW, {"id": "w2", "author": "Mo", "text": "ok", "time": "2026-01-02T03:04:05Z"}],
        )
        assert status == 202
        assert body["results"] == [
            {"id": "w1", "outcome": "unchanged"},
            {"id": "w2", "outcome": "new"},
        ]


async def test_a_mapped_feed_reads_pushes_through_its_mapping(config, redis_url):
    async with running(config, redis_url) as gw:
        review = {"rid": 77, "who": {"name": "Ned"}, "body": "fine", "score": 4}
        status, body = await post_signed(gw, "mapped", review)
        assert status == 202, body
        found = await states(gw, "mapped")
        assert found["77"].rating == 2.0  # 4 of 10 is 2 of 5
        status, body = await post_signed(gw, "mapped", {"rid": 78, "body": "no author"})
        assert status == 400 and body["detail"] == "author: missing"


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "unsigned"),
        ({"X-Zhongtai-Timestamp": "NOW"}, "unsigned"),
        ({"X-Zhongtai-Timestamp": "abc", "X-Zhongtai-Signature": "sha256=00"}, "bad_timestamp"),
        ({"X-Zhongtai-Signature": "sha256=00", "X-Zhongtai-Timestamp": "NOW"}, "bad_signature"),
        ({"X-Zhongtai-Signature": "md5=00", "X-Zhongtai-Timestamp": "NOW"}, "bad_signature"),
    ],
)
async def test_unsigned_or_badly_signed_is_401(config, redis_url, headers, error):
    now = str(int(time.time()))
    sent = {k: v.replace("NOW", now) for k, v in headers.items()}
    async with running(config, redis_url) as gw:
        status, body = await post_signed(gw, "shop", REVIEW, headers=sent)
        assert (status, body["error"]) == (401, error)
        assert await states(gw) == {}


async def test_a_wrong_secret_and_a_stale_timestamp_are_401(config, redis_url):
    async with running(config, redis_url) as gw:
        status, body = await post_signed(gw, "shop", REVIEW, secret="not-it")
        assert (status, body["error"]) == (401, "bad_signature")
        status, body = await post_signed(gw, "shop", REVIEW, timestamp=int(time.time()) - 120)
        assert (status, body["error"]) == (401, "stale")
        assert "tolerance 60 s" in body["detail"]
        status, body = await post_signed(gw, "shop", REVIEW, timestamp=int(time.time()) + 120)
        assert (status, body["error"]) == (401, "stale")
        assert await states(gw) == {}


async def test_a_replayed_request_is_409_and_stores_nothing_twice(config, redis_url):
    async with running(config, redis_url) as gw:
        body = json.dumps(REVIEW).encode()
        stamp = str(int(time.time()))
        headers = {
            "X-Zhongtai-Timestamp": stamp,
            "X-Zhongtai-Signature": sign(SECRET, stamp, body),
        }
        assert (await post_signed(gw, "shop", None, raw=body, headers=headers))[0] == 202
        status, answer = await post_signed(gw, "shop", None, raw=body, headers=headers)
        assert (status, answer["error"]) == (409, "replayed")
        found = await states(gw)
        conversation = await gw.services.router.conversation(found["w1"].conversation)
        assert conversation is not None and len(conversation.messages) == 1


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b'{"id": "x", "author": "a", "text": "cut', "not JSON"),
        (b"[]", "an empty list: no reviews"),
        (b'"just a string"', "review: must be an object, not str"),
        (b'{"author": "a", "text": "t"}', "id: missing"),
        (b'{"id": "x", "text": "t"}', "author: missing"),
        (b'{"id": "x", "author": "a"}', "text: missing"),
        (
            b'{"id": "x", "author": "a", "text": "t", "rating": "five"}',
            "rating: not a number: 'five'",
        ),
        (b'{"id": "x", "author": "a", "text": "t", "rating": 7}', "rating: 7 is outside 0 to 5"),
        (b'{"id": "x", "author": "a", "text": "t", "time": "yesterday"}', "time: not an ISO 8601"),
        (
            b'[{"id": "x", "author": "a", "text": "t"}, {"id": "y", "text": "t"}]',
            "[1].author: missing",
        ),
        (b'{"id": {"a": 1}, "author": "a", "text": "t"}', "id: must be a string or a number"),
    ],
)
async def test_malformed_bodies_are_400_naming_the_field(config, redis_url, payload, detail):
    async with running(config, redis_url) as gw:
        status, body = await post_signed(gw, "shop", None, raw=payload)
        assert status == 400, body
        assert body["error"] == "malformed" and body["detail"].startswith(detail), body
        assert await states(gw) == {}


async def test_oversize_unknown_feed_and_too_many_reviews(config, redis_url):
    async with running(config, redis_url) as gw:
        big = {**REVIEW, "text": "x" * 5000}
        status, body = await post_signed(gw, "shop", big)
        assert (status, body["error"]) == (413, "too_large")
        many = [{**REVIEW, "id": f"m{i}"} for i in range(4)]
        status, body = await post_signed(gw, "shop", many)
        assert (status, body["error"]) == (413, "too_many")
        status, body = await post_signed(gw, "nosuch", REVIEW)
        assert (status, body["error"]) == (404, "unknown_feed")
        assert await states(gw) == {}


async def test_a_push_that_could_not_be_stored_is_503_and_may_be_retried(config, redis_url):
    async with running(config, redis_url) as gw:
        board = gw.services.switchboard
        real = board.ingest
        failures = [RuntimeError("redis away")]

        async def flaky(inbound):
            if failures:
                raise failures.pop()
            return await real(inbound)

        board.ingest = flaky  # type: ignore[method-assign]
        body = json.dumps(REVIEW).encode()
        stamp = str(int(time.time()))
        headers = {"X-Zhongtai-Timestamp": stamp, "X-Zhongtai-Signature": sign(SECRET, stamp, body)}
        status, answer = await post_signed(gw, "shop", None, raw=body, headers=headers)
        assert (status, answer["error"]) == (503, "unavailable")
        assert "Traceback" not in json.dumps(answer)
        # The same signed request again is not a replay: it was never stored.
        status, answer = await post_signed(gw, "shop", None, raw=body, headers=headers)
        assert status == 202 and answer["results"] == [{"id": "w1", "outcome": "new"}]


async def test_a_push_no_replica_confirms_is_503_without_a_traceback_and_stored_once(
    tenant, caplog
):
    """[redis] min_replica_acks = 1 and no replica: the review is stored but not confirmed,
    which during a failover is expected, not an error; the push is refused with a 503 and
    Retry-After, and the same signed push once a replica is there is taken as a duplicate."""
    skip_without_redis_server()
    feeds = [{"name": "shop", "webhook_secret": SECRET}]
    acks = {"min_replica_acks": 1, "min_replica_timeout_ms": 2000}  # a busy machine
    config = reviews_config(tenant, feeds, redis=acks)
    body = json.dumps(REVIEW).encode()
    stamp = str(int(time.time()))
    headers = {"X-Zhongtai-Timestamp": stamp, "X-Zhongtai-Signature": sign(SECRET, stamp, body)}
    with RedisServer(persistent=False) as master:
        async with running(config, master.url) as gw:
            with caplog.at_level(logging.WARNING):
                status, answer = await post_signed(gw, "shop", None, raw=body, headers=headers)
            assert status == 503 and "not yet on a replica" in answer["text"], answer
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert not errors, [r.getMessage() for r in errors]
            async with replica_of(master):
                status, answer = await post_signed(gw, "shop", None, raw=body, headers=headers)
                assert status == 202, answer
                assert answer["results"][0]["outcome"] in ("new", "unchanged"), answer
                found = await states(gw)
                conversation = await gw.services.router.conversation(found["w1"].conversation)
                assert conversation is not None and len(conversation.messages) == 1
