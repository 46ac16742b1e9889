"""The ``[reviews]`` table: review feeds (``[[reviews.feeds]]``) and channel-wide settings.

Every Struct forbids unknown keys, so a typo is an error naming the key (the gateway's loader
turns msgspec's path into file, table and key). Checks that span keys (a json feed needs a
URL or a webhook secret, templates name known placeholders, feed names are unique) live in
``__post_init__`` and name the key in their message. See docs/channels/reviews.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec

# A feed name is a URL path segment (/reviews/{name}) and part of Redis keys and routing's
# customer fields, which use "|" and ":" as separators.
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
HttpUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Positive = Annotated[float, msgspec.Meta(gt=0)]

FeedKind = Literal["json", "rss", "appstore", "google_play"]

# Placeholders a reply template may use; anything else in braces that looks like one is a
# configuration error, so that a typo ({reviewid}) fails at start, not at the first reply.
PLACEHOLDERS = frozenset(
    {"review_id", "text", "product", "feed", "author", "conversation_id", "message_id", "secret"}
)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class FieldMap(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a generic JSON feed keeps each field of a review: dotted paths into one item
    (``user.name``, ``ratings.0.value``), and ``items``/``next`` into the page.

    The defaults read the webhook's own shape, ``{id, author, rating, title, text, time,
    product, url}``, so a feed that already speaks it needs no mapping."""

    items: str = ""  # the list of reviews in a page; "" = the page itself is the list
    id: str = "id"
    author: str = "author"
    author_id: str = ""  # a stable author id, when the feed has one ("" = use the name)
    rating: str = "rating"
    title: str = "title"
    text: str = "text"
    time: str = "time"
    product: str = "product"
    url: str = "url"
    deleted: str = "deleted"  # truthy: the review was deleted (a tombstone)
    # The next page: a URL (absolute or relative to the feed's), or, with the feed's
    # page_param, a token sent in that query parameter. "" = one page.
    next: str = ""


class ReplyConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A generic HTTP reply endpoint. ``url``, ``headers`` values and ``body`` are templates
    with ``{review_id}``, ``{text}``, ``{product}``, ``{feed}``, ``{author}``,
    ``{conversation_id}``, ``{message_id}`` and ``{secret}`` (the value of the environment
    variable ``secret_env``). Values are URL-quoted in the URL, JSON-encoded (with their
    quotes) in a json body, form-encoded in a form body and inserted as they are in a text
    body and in headers."""

    url: str
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = {}
    body: str = '{"review_id": {review_id}, "text": {text}}'
    body_format: Literal["json", "form", "text"] = "json"
    secret_env: str = ""
    # Longest answer the store takes (0: no limit); longer replies are refused before sending.
    max_chars: Annotated[int, msgspec.Meta(ge=0)] = 0

    def __post_init__(self) -> None:
        for where, template in [("url", self.url), ("body", self.body), *self.headers.items()]:
            for name in PLACEHOLDER.findall(template):
                if name not in PLACEHOLDERS:
                    known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
                    raise ValueError(f"reply.{where}: unknown placeholder {{{name}}}; use {known}")
        if not re.match(r"^https?://", self.url):
            raise ValueError("reply.url: must start with http:// or https://")


class GooglePlayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The Google Play Developer API (reviews.list and reviews.reply) for one app.

    The access token is an OAuth 2.0 token with the androidpublisher scope, from a service
    account that has the "Reply to reviews" permission; mint it outside the gateway and hand
    it over in ``access_token``, the environment variable ``access_token_env``, or the file
    ``access_token_file`` (read again for every call, so a sidecar can rotate it)."""

    package: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.]+$")]
    api_base: HttpUrl = "https://androidpublisher.googleapis.com"
    access_token: str = ""
    access_token_env: str = ""
    access_token_file: str = ""
    max_results: Annotated[int, msgspec.Meta(ge=1, le=100)] = 100
    translation_language: str = ""
    # Google Play keeps replies to 350 characters.
    max_reply_chars: Annotated[int, msgspec.Meta(ge=1)] = 350

    def token(self) -> str:
        """The current access token; "" when none is configured or readable."""
        if self.access_token_file:
            try:
                return Path(self.access_token_file).read_text().strip()
            except OSError:
                return ""
        if self.access_token_env:
            return os.environ.get(self.access_token_env, "").strip()
        return self.access_token

    @property
    def list_url(self) -> str:
        return (
            f"{self.api_base.rstrip('/')}/androidpublisher/v3/applications/{self.package}/reviews"
        )


class FeedConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``[[reviews.feeds]]`` entry: a pulled feed, a pushed one (webhook), or both."""

    name: Name
    kind: FeedKind = "json"
    # What to poll; "" = nothing (a json feed that is only pushed). google_play builds its
    # own from [reviews.feeds.google_play].
    url: str = ""
    poll_s: Positive = 300.0
    headers: dict[str, str] = {}  # sent with every poll (an Accept header, say)
    # Headers whose values come from environment variables: {"X-Api-Key": "SHOP_API_KEY"}.
    headers_env: dict[str, str] = {}
    # Enables POST /reviews/{name}, signed with this secret (ZHONGTAI_REVIEWS_SECRET_<NAME>
    # in the environment wins).
    webhook_secret: str = ""
    timestamp_tolerance_s: Positive = 300.0
    # Reviews older than this are recorded but never become conversations: a new feed's
    # years of history, or a feed that starts over, is not a flood of work. 0: no limit.
    max_age_s: Seconds = 14 * 86400.0
    # The first poll of a feed only records what is there (for feeds without review times,
    # where max_age_s cannot tell old from new).
    baseline_first_poll: bool = False
    fields: FieldMap = msgspec.field(default_factory=FieldMap)
    # With fields.next: the query parameter that carries a next-page token.
    page_param: str = ""
    # Remember the newest review time or id seen and send it in cursor_param on the first
    # page of each poll, for feeds that can list "since".
    cursor: Literal["none", "time", "id"] = "none"
    cursor_param: str = ""
    max_pages: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    # Stop paging at a page whose reviews are all known and unchanged (feeds that list the
    # newest first). Off when the listing is complete: every page is read then.
    stop_at_known: bool = True
    # Every poll lists every live review: one missing from a whole, successful listing was
    # deleted. Never true for the App Store (last 500) or Google Play (last week) feeds.
    complete: bool = False
    # The product stored with each review when the feed does not say (an app's name).
    product: str = ""
    # The feed's top rating (10, 100): ratings are stored on a scale of 5.
    rating_scale: Positive = 5.0
    # For rss: the entry key that holds a star rating (feedparser's name: <im:rating> is
    # "im_rating"); "" = RSS entries carry none.
    rss_rating: str = ""
    # Unrated reviews: derive metadata["rating"] (1-5) from the sentiment score, so that
    # rating rules rank them; metadata["rating_source"] says "sentiment".
    estimate_rating: bool = True
    # An edit of a review whose conversation closed less than this long ago reopens it.
    reopen_within_s: Seconds = 30 * 86400.0
    reply: ReplyConfig | None = None
    google_play: GooglePlayConfig | None = None

    def __post_init__(self) -> None:
        if self.kind == "google_play":
            if self.google_play is None:
                raise ValueError(
                    "google_play: a google_play feed needs [reviews.feeds.google_play]"
                )
            if self.url:
                raise ValueError("url: a google_play feed's URL comes from google_play.api_base")
        elif self.google_play is not None:
            raise ValueError(f"google_play: only for kind google_play, not {self.kind}")
        if self.kind in ("rss", "appstore") and not self.url:
            raise ValueError(f"url: a {self.kind} feed needs a url")
        if self.url and not re.match(r"^https?://[^\s/]+", self.url):
            raise ValueError("url: must start with http:// or https://")
        if not self.source_url and not webhook_secret(self):
            raise ValueError("url: set url (to poll) or webhook_secret (to be pushed to)")
        if self.cursor != "none" and not self.cursor_param:
            raise ValueError("cursor_param: a cursor needs the query parameter that carries it")
        if self.page_param and not self.fields.next and self.kind == "json":
            raise ValueError("page_param: needs fields.next, where the next-page token is")
        if self.complete:
            if self.cursor != "none":
                raise ValueError("complete: a listing sent a cursor is never complete")
            self.stop_at_known = False

    @property
    def source_url(self) -> str:
        """What to poll: url, or for google_play the reviews.list endpoint."""
        if self.google_play is not None:
            return self.google_play.list_url
        return self.url

    @property
    def polled(self) -> bool:
        return bool(self.source_url)


class ReviewsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[reviews]`` table. See docs/channels/reviews.md for every key."""

    enabled: bool = True
    feeds: list[FeedConfig] = []
    # Webhook bodies larger than this get 413; more reviews in one body than this get 413.
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 256 * 1024
    max_reviews_per_request: Annotated[int, msgspec.Meta(ge=1)] = 100
    # A feed page larger than this is an error (and the poll backs off).
    max_page_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 * 1024 * 1024
    request_timeout_s: Positive = 20.0
    # After a failed poll: wait backoff_base_s, doubling per failure up to backoff_max_s.
    backoff_base_s: Positive = 5.0
    backoff_max_s: Positive = 3600.0
    # A Retry-After longer than this is cut to it (a feed answering "come back in a year").
    max_retry_after_s: Positive = 6 * 3600.0
    # /readyz waits for each polled feed's first poll attempt (successful or not).
    ready_after_first_poll: bool = True
    # Post the gateway's own automatic messages (queue positions, closed notices, inactivity
    # warnings) as public answers. Off: only agents' replies are posted; the automatic ones
    # stay in the conversation's history.
    post_system_messages: bool = False
    user_agent: str = "zhongtai-reviews/1"

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for i, feed in enumerate(self.feeds):
            if feed.name in seen:
                raise ValueError(f"feeds[{i}].name: duplicate feed name {feed.name!r}")
            seen.add(feed.name)

    def feed(self, name: str) -> FeedConfig | None:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        return None


def secret_env_name(feed: str) -> str:
    """The environment variable whose value overrides a feed's webhook_secret."""
    return "ZHONGTAI_REVIEWS_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", feed).upper()


def webhook_secret(feed: FeedConfig) -> str:
    return os.environ.get(secret_env_name(feed.name), "") or feed.webhook_secret
