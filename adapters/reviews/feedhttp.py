"""Asking a review feed for a page: the HTTP request (bounded in time and size, conditional
on the last ETag), the feed's Retry-After, and the URLs of the first and next pages. Apart
from the parsers (feeds.py) because parsing is pure and this is all network and URLs; a
failure here and a page that cannot be read whole are the same FeedError to the poller.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from adapters.reviews.config import FeedConfig

log = logging.getLogger("zhongtai.reviews")


class FeedError(Exception):
    """A poll that failed: the feed answered an error, garbage or nothing.

    ``retry_after_s`` is the feed's own Retry-After; ``cursor_refused`` says the feed
    refused the cursor we sent (so the poll starts over without one)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        cursor_refused: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status
        self.retry_after_s, self.cursor_refused = retry_after_s, cursor_refused


@dataclass
class Fetched:
    status: int
    body: bytes
    etag: str = ""
    last_modified: str = ""


# HTTP.


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    *,
    timeout_s: float,
    max_bytes: int,
) -> Fetched:
    try:
        async with session.get(
            url,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=True,
        ) as response:
            if response.status == 304:
                return Fetched(status=304, body=b"")
            if response.status >= 300:
                snippet = (await response.content.read(300)).decode("utf-8", "replace")
                raise FeedError(
                    f"HTTP {response.status}: {' '.join(snippet.split())[:200]}",
                    status=response.status,
                    retry_after_s=retry_after(response.headers.get("Retry-After")),
                )
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise FeedError(f"page larger than {max_bytes} bytes")
            return Fetched(
                status=response.status,
                body=bytes(body),
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
            )
    except FeedError:
        raise
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # A dropped connection mid-body is a ClientPayloadError: the page is not taken.
        raise FeedError(f"request failed: {type(exc).__name__}: {exc}") from exc


# URLs.


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, v) for k, v in params.items() if v != ""]
    return urlunsplit(parts._replace(query=urlencode(query)))


def first_url(feed: FeedConfig, cursor: str) -> str:
    url = feed.source_url
    if feed.google_play is not None:
        gp = feed.google_play
        params = {"maxResults": str(gp.max_results)}
        if gp.translation_language:
            params["translationLanguage"] = gp.translation_language
        url = with_query(url, **params)
    if feed.cursor != "none" and cursor:
        url = with_query(url, **{feed.cursor_param: cursor})
    return url


def next_url(feed: FeedConfig, current: str, following: str) -> str | None:
    """The URL of the next page, or None when it would leave the feed's host (a feed that
    links elsewhere is not followed: the operator named one host)."""
    if feed.kind == "google_play":
        return with_query(first_url(feed, ""), token=following)
    if feed.page_param:
        return with_query(current, **{feed.page_param: following})
    url = urljoin(current, following)
    if feed.kind == "appstore":
        url = appstore_json_url(url)
    base, target = urlsplit(feed.source_url), urlsplit(url)
    if (target.scheme, target.netloc) != (base.scheme, base.netloc):
        log.warning("reviews %s: not following a next link to another host: %s", feed.name, url)
        return None
    return url


def appstore_json_url(url: str) -> str:
    """Apple's JSON feed links its next page to the XML one (``.../xml?urlDesc=...``)."""
    parts = urlsplit(url)
    path = parts.path
    if path.endswith("/xml"):
        path = path[: -len("/xml")] + "/json"
    return urlunsplit(parts._replace(path=path, query=""))
