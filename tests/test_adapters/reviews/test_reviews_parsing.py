"""Reading feed pages, loose values and configs, without a gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from adapters.reviews.config import FeedConfig, ReviewsConfig
from adapters.reviews.feeds import FeedError, appstore_json_url, next_url, parse, retry_after
from adapters.reviews.replies import _error_of, render
from adapters.reviews.review import Review, ReviewError, as_rating, as_time, describe
from gateway.config import ConfigError, parse_config


def feed(**fields) -> FeedConfig:
    url = {} if fields.get("kind") == "google_play" else {"url": "https://reviews.example.com/api"}
    return msgspec.convert({"name": "f", **url, **fields}, FeedConfig)


def test_json_mapping_reads_nested_fields_and_leaves_out_unreadable_items():
    config = feed(
        fields={
            "items": "result.items",
            "id": "rid",
            "author": "user.name",
            "rating": "score.value",
            "text": "content",
            "time": "at",
            "next": "result.cursor",
        },
        page_param="after",
        rating_scale=10,
    )
    body = json.dumps(
        {
            "result": {
                "items": [
                    {
                        "rid": 1,
                        "user": {"name": "Ann"},
                        "score": {"value": 2},
                        "content": "bad",
                        "at": 1767225600,
                    },
                    {"user": {"name": "No id"}, "content": "lost"},
                    {"rid": "x2", "score": {"value": "eleven"}},
                ],
                "cursor": "abc",
            }
        }
    ).encode()
    page = parse(config, body)
    assert [r.id for r in page.reviews] == ["1"]
    review = page.reviews[0]
    assert (review.author, review.rating, review.text) == ("Ann", 1.0, "bad")
    assert review.time == datetime(2026, 1, 1, tzinfo=UTC)
    assert page.unreadable == ["item 1: id: missing", "item 2: rating: not a number: 'eleven'"]
    assert page.next == "abc"
    assert next_url(config, config.url, "abc") == "https://reviews.example.com/api?after=abc"


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>oops</html>", b'{"data": [{"id": 1', b'{"items": {}}', b"null"],
)
def test_garbage_json_is_a_feed_error(body):
    with pytest.raises(FeedError):
        parse(feed(fields={"items": "items"}), body)


def test_truncated_or_garbage_xml_is_a_feed_error():
    rss = feed(kind="rss")
    whole = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><guid>1</guid><description>all of it</description></item></channel></rss>"
    )
    assert [r.text for r in parse(rss, whole).reviews] == ["all of it"]
    with pytest.raises(FeedError, match="unreadable feed"):
        parse(rss, whole[:-40])
    with pytest.raises(FeedError):
        parse(rss, b"this is not xml")


def test_next_links_stay_on_the_feeds_host():
    config = feed()
    assert next_url(config, config.url, "/api?page=2") == "https://reviews.example.com/api?page=2"
    assert next_url(config, config.url, "https://evil.example.net/x") is None


def test_app_store_quirks():
    config = feed(kind="appstore")
    one = {
        "feed": {
            "entry": {
                "id": {"label": "9"},
                "im:rating": {"label": "3"},
                "author": {
                    "name": {"label": "Zed"},
                    "uri": {"label": "https://itunes.apple.com/us/reviews/id1"},
                },
                "content": {"label": "ok"},
                "updated": {"label": "2026-02-03T04:05:06-07:00"},
            },
            "link": [
                {
                    "attributes": {
                        "rel": "next",
                        "href": "https://x/page=2/id=1/sortby=mostrecent/xml?urlDesc=/y",
                    }
                }
            ],
        }
    }
    page = parse(config, json.dumps(one).encode())
    assert [(r.id, r.rating, r.author_id) for r in page.reviews] == [
        ("9", 3.0, "https://itunes.apple.com/us/reviews/id1")
    ]
    assert page.reviews[0].time == datetime(2026, 2, 3, 11, 5, 6, tzinfo=UTC)
    assert appstore_json_url(page.next) == "https://x/page=2/id=1/sortby=mostrecent/json"
    # Older feeds put the app itself first, without a rating; no reviews: no entry at all.
    app_first = {"feed": {"entry": [{"im:name": {"label": "The app"}}, one["feed"]["entry"]]}}
    assert [r.id for r in parse(config, json.dumps(app_first).encode()).reviews] == ["9"]
    assert parse(config, b'{"feed": {"author": {}}}').reviews == []
    with pytest.raises(FeedError):
        parse(config, b'{"nope": 1}')


def test_google_play_reviews_list():
    config = feed(kind="google_play", google_play={"package": "com.x", "access_token": "t"})
    assert (
        config.source_url
        == "https://androidpublisher.googleapis.com/androidpublisher/v3/applications/com.x/reviews"
    )
    body = {
        "reviews": [
            {
                "reviewId": "gp:1",
                "authorName": "A Google user",
                "comments": [
                    {
                        "userComment": {
                            "text": "\tno title here",
                            "starRating": 2,
                            "lastModified": {"seconds": "1767225600", "nanos": 500000000},
                        }
                    },
                    {"developerComment": {"text": "thanks"}},
                ],
            },
            {"reviewId": "gp:2", "comments": []},
        ],
        "tokenPagination": {"nextPageToken": "tok"},
    }
    page = parse(config, json.dumps(body).encode())
    review = page.reviews[0]
    assert (review.id, review.title, review.text, review.rating) == (
        "gp:1",
        "",
        "no title here",
        2.0,
    )
    assert review.extra == {"package": "com.x", "developer_reply": "1"}
    assert review.time == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert page.unreadable == ["review 1: comments.userComment: missing"]
    assert next_url(config, config.source_url, "tok").endswith("/reviews?maxResults=100&token=tok")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T08:00:00+08:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01 00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("Thu, 01 Jan 2026 00:00:00 GMT", datetime(2026, 1, 1, tzinfo=UTC)),
        (1767225600, datetime(2026, 1, 1, tzinfo=UTC)),
        (1767225600000, datetime(2026, 1, 1, tzinfo=UTC)),
        (None, None),
    ],
)
def test_times(value, expected):
    assert as_time(value) == expected


def test_ratings():
    assert as_rating("4.5") == 4.5 and as_rating(None) is None and as_rating(80, scale=100) == 4.0
    for bad in (True, "x", 6, -1, float("nan")):
        with pytest.raises(ReviewError):
            as_rating(bad)


def test_retry_after_seconds_and_dates():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now) == 60.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_version_hash_ignores_what_is_not_the_customers_words():
    a = Review(id="1", text="Broken  again", rating=1, time=datetime(2026, 1, 1, tzinfo=UTC))
    b = Review(id="1", text="Broken again", rating=1, extra={"app_version": "2"})
    assert a.version_hash() == b.version_hash()
    assert a.version_hash() != Review(id="1", text="Broken again", rating=2).version_hash()


def test_describe():
    review = Review(
        id="1", rating=2, title="Slow", text="Two weeks!", product="Kettle", url="https://s/1"
    )
    assert describe(review, None) == "★★☆☆☆ 2/5 · Slow\nTwo weeks!\n— Kettle · https://s/1"
    assert describe(Review(id="2", text="meh"), 2) == "No rating (about 2/5 from its words)\nmeh"


def test_reply_templates_encode_per_place():
    values = {"review_id": "a/b", "text": 'say "hi"'}
    assert (
        render('{"id": {review_id}, "t": {text}}', values, json.dumps)
        == '{"id": "a/b", "t": "say \\"hi\\""}'
    )
    assert _error_of(
        403, b'{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "no"}}'
    ) == (
        "PERMISSION_DENIED",
        "HTTP 403: no",
    )
    assert _error_of(502, b"<html>bad gateway</html>") == (
        "http_502",
        "HTTP 502: <html>bad gateway</html>",
    )


@pytest.mark.parametrize(
    ("table", "where"),
    [
        (
            {"feeds": [{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}]},
            "duplicate feed name",
        ),
        ({"feeds": [{"name": "a"}]}, "set url (to poll) or webhook_secret"),
        (
            {"feeds": [{"name": "a", "kind": "rss", "webhook_secret": "s"}]},
            "a rss feed needs a url",
        ),
        ({"feeds": [{"name": "a", "kind": "google_play"}]}, "needs [reviews.feeds.google_play]"),
        ({"feeds": [{"name": "a", "url": "https://x", "cursor": "time"}]}, "cursor_param"),
        ({"feeds": [{"name": "a b", "url": "https://x"}]}, "matching regex"),
        (
            {"feeds": [{"name": "a", "url": "https://x", "pol_s": 1}]},
            'unknown key "pol_s" — did you mean "poll_s"?',
        ),
        (
            {"feeds": [{"name": "a", "url": "https://x", "reply": {"url": "https://r/{id}"}}]},
            "unknown placeholder {id}",
        ),
    ],
)
def test_config_errors_name_the_table_and_key(table, where):
    with pytest.raises(ConfigError) as error:
        parse_config({"reviews": table}, "z.toml", {"reviews": ReviewsConfig}, env={})
    assert where in str(error.value)
    assert str(error.value).startswith(("z.toml: [reviews", "z.toml: reviews"))
