"""Reading reviews out of feed pages, for each feed kind: generic JSON with a
field mapping, RSS and Atom (feedparser), the App Store customer-reviews JSON feed and the
Google Play Developer API's reviews list.

Parsing is pure and synchronous; a page that cannot be read whole raises FeedError, so that
nothing of a broken page (a truncated document parses into truncated reviews) is taken.
Fetching the pages is feedhttp.py's; its names are re-exported here for the poller.
"""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
import msgspec

from adapters.inputs import decode_json
from adapters.reviews.config import FeedConfig, FieldMap
from adapters.reviews.feedhttp import (
    FeedError,
    Fetched,
    appstore_json_url,
    fetch,
    first_url,
    next_url,
    retry_after,
    with_query,
)
from adapters.reviews.review import (
    Review,
    ReviewError,
    as_flag,
    as_id,
    as_rating,
    as_text,
    as_time,
    html_to_text,
)

__all__ = [
    "PARSERS",
    "FeedError",
    "Fetched",
    "Page",
    "appstore_json_url",
    "fetch",
    "first_url",
    "next_url",
    "parse",
    "parse_async",
    "retry_after",
    "review_from_mapping",
    "with_query",
]

# Pages larger than this are parsed in a worker thread: feedparser on a few megabytes of XML
# takes long enough to stall every socket of the process.
THREAD_PARSE_BYTES = 256 * 1024
# feedparser flags a document it could not parse whole with one of these; anything else it
# flags (a declared encoding that was wrong, a text/plain content type) left it readable.
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass
class Page:
    reviews: list[Review]
    next: str = ""  # a URL or a token; "" = the last page
    unreadable: list[str] = field(default_factory=list)  # why items were left out


# Parsing.


def parse(feed: FeedConfig, body: bytes) -> Page:
    parser: Callable[[FeedConfig, bytes], Page] = PARSERS[feed.kind]
    return parser(feed, body)


async def parse_async(feed: FeedConfig, body: bytes) -> Page:
    if len(body) > THREAD_PARSE_BYTES:
        return await asyncio.to_thread(parse, feed, body)
    return parse(feed, body)


def _decode_json(body: bytes) -> Any:
    try:
        return decode_json(msgspec.json.decode, body)
    except msgspec.DecodeError as exc:
        raise FeedError(f"malformed JSON: {exc}") from None


def path_get(data: Any, path: str) -> Any:
    """The value at a dotted path (``user.name``, ``comments.0.text``); None when absent."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def review_from_mapping(
    item: Any, fields: FieldMap, *, rating_scale: float = 5.0, require_author: bool = False
) -> Review:
    """One review from one JSON object through the field mapping. Raises ReviewError
    naming the field (by its name in the review's own shape) that is missing or wrong."""
    if not isinstance(item, dict):
        raise ReviewError("review", f"must be an object, not {type(item).__name__}")
    review_id = as_id(path_get(item, fields.id), "id")
    deleted = bool(fields.deleted) and as_flag(path_get(item, fields.deleted))
    author = as_text(path_get(item, fields.author), "author")
    if require_author and not author and not deleted:
        raise ReviewError("author", "missing")
    text = as_text(path_get(item, fields.text), "text")
    title = as_text(path_get(item, fields.title), "title")
    if require_author and not deleted and path_get(item, fields.text) is None:
        raise ReviewError("text", "missing")
    return Review(
        id=review_id,
        author=author,
        author_id=as_text(path_get(item, fields.author_id), "author_id")
        if fields.author_id
        else "",
        rating=as_rating(path_get(item, fields.rating), "rating", rating_scale),
        title=title,
        text=text,
        time=as_time(path_get(item, fields.time), "time"),
        product=as_text(path_get(item, fields.product), "product"),
        url=as_text(path_get(item, fields.url), "url"),
        deleted=deleted,
    )


def parse_json(feed: FeedConfig, body: bytes) -> Page:
    data = _decode_json(body)
    items = path_get(data, feed.fields.items)
    if not isinstance(items, list):
        where = feed.fields.items or "the top level"
        raise FeedError(f"no list of reviews at {where!r}")
    page = Page(reviews=[])
    for i, item in enumerate(items):
        try:
            page.reviews.append(
                review_from_mapping(item, feed.fields, rating_scale=feed.rating_scale)
            )
        except ReviewError as exc:
            page.unreadable.append(f"item {i}: {exc}")
    following = path_get(data, feed.fields.next) if feed.fields.next else None
    page.next = following if isinstance(following, str) else ""
    if isinstance(following, int) and not isinstance(following, bool):
        page.next = str(following)
    return page


def _struct_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC)


def parse_rss(feed: FeedConfig, body: bytes) -> Page:
    """RSS 0.9x/1.0/2.0 and Atom through feedparser (given bytes, so it never fetches)."""
    parsed = feedparser.parse(body, sanitize_html=True, resolve_relative_uris=True)
    problem = parsed.get("bozo_exception")
    if parsed.get("bozo") and not isinstance(problem, _HARMLESS_BOZO):
        raise FeedError(f"unreadable feed: {type(problem).__name__}: {problem}")
    if not parsed.get("version") and not parsed.entries:
        raise FeedError("not an RSS or Atom document")
    page = Page(reviews=[])
    for i, entry in enumerate(parsed.entries):
        try:
            review_id = as_id(entry.get("id") or entry.get("link"), "id")
            content = entry.get("content") or []
            markup = content[0].get("value", "") if content else entry.get("summary", "")
            rating = entry.get(feed.rss_rating) if feed.rss_rating else None
            page.reviews.append(
                Review(
                    id=review_id,
                    author=as_text(entry.get("author"), "author"),
                    rating=as_rating(rating, "rating", feed.rating_scale),
                    title=html_to_text(entry.get("title", "")),
                    text=html_to_text(markup),
                    time=_struct_time(entry.get("published_parsed") or entry.get("updated_parsed")),
                    url=as_text(entry.get("link"), "url"),
                )
            )
        except ReviewError as exc:
            page.unreadable.append(f"entry {i}: {exc}")
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "next" and link.get("href"):
            page.next = link["href"]  # RFC 5005 paging
    return page


def _label(entry: Any, key: str) -> Any:
    value = entry.get(key) if isinstance(entry, dict) else None
    return value.get("label") if isinstance(value, dict) else None


def parse_appstore(feed: FeedConfig, body: bytes) -> Page:
    """The App Store's customer-reviews feed:
    ``https://itunes.apple.com/{country}/rss/customerreviews/page={n}/id={app}/sortby=mostrecent/json``.
    Every value is wrapped as ``{"label": ...}``; a page with one review has an object for
    ``entry``, not a list, and older feeds put the app itself first (no ``im:rating``)."""
    data = _decode_json(body)
    top = data.get("feed") if isinstance(data, dict) else None
    if not isinstance(top, dict):
        raise FeedError("no 'feed' object: not an App Store reviews feed")
    entries = top.get("entry", [])
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise FeedError("'feed.entry' is neither a list nor an object")
    page = Page(reviews=[])
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "im:rating" not in entry:
            continue  # the app's own entry
        try:
            author = entry.get("author") if isinstance(entry.get("author"), dict) else {}
            link = entry.get("link") if isinstance(entry.get("link"), dict) else {}
            version = _label(entry, "im:version")
            page.reviews.append(
                Review(
                    id=as_id(_label(entry, "id"), "id.label"),
                    author=as_text(_label(author, "name"), "author.name.label"),
                    author_id=as_text(_label(author, "uri"), "author.uri.label"),
                    rating=as_rating(_label(entry, "im:rating"), "im:rating.label"),
                    title=as_text(_label(entry, "title"), "title.label"),
                    text=as_text(_label(entry, "content"), "content.label"),
                    time=as_time(_label(entry, "updated"), "updated.label"),
                    url=as_text((link.get("attributes") or {}).get("href"), "link"),
                    extra={"app_version": str(version)} if version else {},
                )
            )
        except ReviewError as exc:
            page.unreadable.append(f"entry {i}: {exc}")
    links = top.get("link", [])
    for link in links if isinstance(links, list) else [links]:
        attributes = link.get("attributes", {}) if isinstance(link, dict) else {}
        if attributes.get("rel") == "next" and attributes.get("href") and page.reviews:
            page.next = attributes["href"]
    return page


def parse_google_play(feed: FeedConfig, body: bytes) -> Page:
    """The Google Play Developer API's ``reviews.list``: reviews created or changed in the
    last week, with comments whose ``userComment`` is the review (``text`` is
    ``title\\tbody`` when the reviewer gave a title) and ``developerComment`` our answer."""
    data = _decode_json(body)
    if not isinstance(data, dict):
        raise FeedError("not a reviews.list response")
    reviews = data.get("reviews", [])
    if not isinstance(reviews, list):
        raise FeedError("'reviews' is not a list")
    page = Page(reviews=[])
    for i, item in enumerate(reviews):
        try:
            if not isinstance(item, dict):
                raise ReviewError("review", "not an object")
            comments = item.get("comments") or []
            user = next((c["userComment"] for c in comments if "userComment" in c), None)
            if not isinstance(user, dict):
                raise ReviewError("comments.userComment", "missing")
            text = as_text(user.get("text"), "userComment.text")
            title, tab, body_text = text.partition("\t")
            extra = {"package": feed.google_play.package} if feed.google_play else {}
            for key, name in (("appVersionName", "app_version"), ("reviewerLanguage", "language")):
                if user.get(key):
                    extra[name] = str(user[key])
            if any("developerComment" in c for c in comments):
                extra["developer_reply"] = "1"
            page.reviews.append(
                Review(
                    id=as_id(item.get("reviewId"), "reviewId"),
                    author=as_text(item.get("authorName"), "authorName"),
                    rating=as_rating(user.get("starRating"), "starRating"),
                    title=title if tab else "",
                    text=body_text if tab else text,
                    time=as_time(user.get("lastModified"), "lastModified"),
                    product=feed.google_play.package if feed.google_play else "",
                    extra=extra,
                )
            )
        except ReviewError as exc:
            page.unreadable.append(f"review {i}: {exc}")
    token = path_get(data, "tokenPagination.nextPageToken")
    page.next = token if isinstance(token, str) else ""
    return page


PARSERS: dict[str, Callable[[FeedConfig, bytes], Page]] = {
    "json": parse_json,
    "rss": parse_rss,
    "appstore": parse_appstore,
    "google_play": parse_google_play,
}
