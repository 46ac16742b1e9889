"""A local stand-in for every review source and reply endpoint the channel talks to, on a
real socket: a generic JSON API with its own field names and paging, RSS and Atom, the App
Store customer-reviews feed, the Google Play Developer API (list and reply), and a generic
reply endpoint.

A test edits ``reviews`` (newest first) to play new reviews, edits and deletions, queues
forced answers with ``answer_next`` (errors, garbage, 429 with Retry-After), and reads what
the channel sent in ``requests`` and ``replies``."""

from __future__ import annotations

import collections
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

GOOGLE_TOKEN = "ya29.test-token"
APP_ID = "1234567"
PACKAGE = "com.example.shop"


@dataclass
class FakeReview:
    id: str
    author: str
    text: str
    rating: int | None = 5
    title: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    author_id: str = ""
    product: str = ""
    deleted: bool = False  # listed as a tombstone (JSON only)


@dataclass
class Seen:
    route: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic()
    status: int = 0
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Forced:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)  # only requests with this query


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


class FakeFeedServer:
    def __init__(self) -> None:
        self.reviews: list[FakeReview] = []
        self.page_size = 2
        self.requests: list[Seen] = []
        self.replies: list[Seen] = []
        self._forced: dict[str, collections.deque[Forced]] = collections.defaultdict(
            collections.deque
        )
        self.refuse_cursor = False  # 410 to a request carrying since=
        self.ignore_since = False  # a feed that starts over: lists everything again
        self.etags = True
        self.last_modified = False  # validate with Last-Modified / If-Modified-Since instead
        self._runner: web.AppRunner | None = None
        self.port = 0

    # Set-up.

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, *reviews: FakeReview) -> None:
        """New reviews go on top: feeds list the newest first."""
        for review in reviews:
            self.reviews.insert(0, review)

    def find(self, review_id: str) -> FakeReview:
        return next(r for r in self.reviews if r.id == review_id)

    def answer_next(
        self,
        route: str,
        status: int,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        times: int = 1,
        match: dict[str, str] | None = None,
    ) -> None:
        """The next `times` requests to route (whose query holds `match`) get this answer."""
        raw = body.encode() if isinstance(body, str) else body
        for _ in range(times):
            self._forced[route].append(Forced(status, raw, headers or {}, match or {}))

    def forced_left(self, route: str) -> int:
        return len(self._forced.get(route) or ())

    def seen(self, route: str) -> list[Seen]:
        return [r for r in self.requests if r.route == route]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/json", self._json)
        app.router.add_get("/plain", self._plain)
        app.router.add_get("/rss", self._rss)
        app.router.add_get("/atom", self._atom)
        app.router.add_get(
            "/us/rss/customerreviews/page={page:\\d+}/id={app}/sortby=mostrecent/{fmt}",
            self._appstore,
        )
        app.router.add_get("/androidpublisher/v3/applications/{package}/reviews", self._play_list)
        app.router.add_post(
            "/androidpublisher/v3/applications/{package}/reviews/{review}", self._play_reply
        )
        app.router.add_post("/reply/{review}", self._reply)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # Plumbing.

    async def _record(self, route: str, request: web.Request) -> Seen:
        seen = Seen(
            route=route,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            at=time.monotonic(),
            body=await request.read(),
        )
        if route.endswith("reply"):
            self.replies.append(seen)
        else:
            self.requests.append(seen)
        return seen

    def _forced_answer(self, route: str, seen: Seen) -> web.Response | None:
        queue = self._forced.get(route)
        forced = next(
            (f for f in queue or () if all(seen.query.get(k) == v for k, v in f.match.items())),
            None,
        )
        if forced is None or queue is None:
            return None
        queue.remove(forced)
        seen.status = forced.status
        return web.Response(status=forced.status, body=forced.body, headers=forced.headers)

    def _send(
        self, seen: Seen, request: web.Request, body: bytes, content_type: str
    ) -> web.Response:
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.etags and request.headers.get("If-None-Match") == etag:
            seen.status = 304
            return web.Response(status=304, headers={"ETag": etag})
        newest = max((r.time for r in self.reviews), default=datetime(2026, 1, 1, tzinfo=UTC))
        modified = format_datetime(newest.replace(microsecond=0), usegmt=True)
        if self.last_modified and request.headers.get("If-Modified-Since") == modified:
            seen.status = 304
            return web.Response(status=304)
        seen.status = 200
        headers = {"ETag": etag} if self.etags else {}
        if self.last_modified:
            headers["Last-Modified"] = modified
        return web.Response(body=body, content_type=content_type, headers=headers)

    def _live(self, request: web.Request) -> list[FakeReview]:
        reviews = list(self.reviews)
        since = request.query.get("since")
        if since and not self.ignore_since:
            cut = datetime.fromisoformat(since)
            reviews = [r for r in reviews if r.time > cut]
        return reviews

    # Generic JSON with its own names: {"data": {"reviews": [...]}, "paging": {"next": ...}}.

    async def _json(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("json", request)
        if forced := self._forced_answer("json", seen):
            return forced
        if self.refuse_cursor and "since" in request.query:
            seen.status = 410
            return web.json_response({"error": "cursor expired"}, status=410)
        reviews = self._live(request)
        page = int(request.query.get("page", "1"))
        chunk = reviews[(page - 1) * self.page_size : page * self.page_size]
        more = page * self.page_size < len(reviews)
        data = {
            "data": {
                "reviews": [
                    {
                        "review_id": r.id,
                        "user": {"name": r.author, "id": r.author_id or None},
                        "stars": r.rating,
                        "headline": r.title,
                        "body": r.text,
                        "created_at": r.time.isoformat(),
                        "item": r.product or None,
                        "is_deleted": r.deleted,
                    }
                    for r in chunk
                ]
            },
            "paging": {"next": f"/json?page={page + 1}" if more else None},
        }
        return self._send(seen, request, json.dumps(data).encode(), "application/json")

    # The webhook's own shape, one page, as a list.

    async def _plain(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("plain", request)
        if forced := self._forced_answer("plain", seen):
            return forced
        items = [
            {
                "id": r.id,
                "author": r.author,
                "rating": r.rating,
                "title": r.title,
                "text": r.text,
                "time": r.time.isoformat(),
                "product": r.product,
                **({"deleted": True} if r.deleted else {}),
            }
            for r in self.reviews
        ]
        return self._send(seen, request, json.dumps(items).encode(), "application/json")

    # RSS 2.0 and Atom.

    async def _rss(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("rss", request)
        if forced := self._forced_answer("rss", seen):
            return forced
        items = "".join(
            f"<item><guid>{escape(r.id)}</guid><title>{escape(r.title)}</title>"
            f"<description>{escape('<p>' + r.text + '</p>')}</description>"
            f"<author>{escape(r.author)}</author>"
            f"<pubDate>{format_datetime(r.time)}</pubDate>"
            + (f"<rv:rating>{r.rating}</rv:rating>" if r.rating is not None else "")
            + f"<link>{self.base}/r/{escape(r.id)}</link></item>"
            for r in self.reviews
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<rss version="2.0" xmlns:rv="https://example.com/reviews">'
            f"<channel><title>Reviews</title><link>{self.base}/</link>"
            f"<description>test</description>{items}</channel></rss>"
        )
        return self._send(seen, request, body.encode(), "application/rss+xml")

    async def _atom(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("atom", request)
        if forced := self._forced_answer("atom", seen):
            return forced
        entries = "".join(
            f"<entry><id>urn:review:{escape(r.id)}</id><title>{escape(r.title)}</title>"
            f"<author><name>{escape(r.author)}</name></author>"
            f"<updated>{r.time.isoformat()}</updated>"
            f'<content type="text">{escape(r.text)}</content>'
            f'<link href="{self.base}/r/{escape(r.id)}"/></entry>'
            for r in self.reviews
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>urn:reviews</id><title>Reviews</title><updated>{datetime.now(UTC).isoformat()}"
            f"</updated>{entries}</feed>"
        )
        return self._send(seen, request, body.encode(), "application/atom+xml")

    # The App Store customer-reviews feed, {"label": ...} everywhere.

    def appstore_url(self, page: int = 1) -> str:
        return f"{self.base}/us/rss/customerreviews/page={page}/id={APP_ID}/sortby=mostrecent/json"

    async def _appstore(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("appstore", request)
        if forced := self._forced_answer("appstore", seen):
            return forced
        page = int(request.match_info["page"])
        chunk = self.reviews[(page - 1) * self.page_size : page * self.page_size]
        last = max(1, -(-len(self.reviews) // self.page_size))

        def link(rel: str, n: int, fmt: str = "json") -> dict[str, Any]:
            href = (
                f"{self.base}/us/rss/customerreviews/page={n}/id={APP_ID}/sortby=mostrecent/{fmt}"
            )
            if fmt == "xml":  # Apple's JSON links its next page to the XML one
                href += f"?urlDesc=/customerreviews/page={n}/id={APP_ID}/sortby=mostrecent/json"
            return {"attributes": {"rel": rel, "href": href}}

        entries = [
            {
                "author": {
                    "uri": {
                        "label": f"https://itunes.apple.com/us/reviews/id{r.author_id or r.author}"
                    },
                    "name": {"label": r.author},
                    "label": "",
                },
                "updated": {"label": r.time.isoformat()},
                "im:rating": {"label": str(r.rating)},
                "im:version": {"label": "2.3.1"},
                "id": {"label": r.id},
                "title": {"label": r.title},
                "content": {"label": r.text, "attributes": {"type": "text"}},
                "link": {"attributes": {"rel": "related", "href": f"{self.base}/app/{APP_ID}"}},
                "im:voteSum": {"label": "0"},
                "im:voteCount": {"label": "0"},
            }
            for r in chunk
        ]
        links = [link("alternate", 1), link("self", page), link("first", 1), link("last", last)]
        if page < last:
            links.append(link("next", page + 1, "xml"))
        feed: dict[str, Any] = {
            "author": {
                "name": {"label": "iTunes Store"},
                "uri": {"label": "http://www.apple.com/us/itunes/"},
            },
            "updated": {"label": datetime.now(UTC).isoformat()},
            "link": links,
            "id": {"label": seen.path},
        }
        if len(entries) == 1:
            feed["entry"] = entries[0]  # Apple's: one entry is an object, not a list
        elif entries:
            feed["entry"] = entries
        return self._send(seen, request, json.dumps({"feed": feed}).encode(), "application/json")

    # Google Play Developer API.

    def _play_auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {GOOGLE_TOKEN}":
            body = {
                "error": {
                    "code": 401,
                    "message": "Invalid Credentials",
                    "status": "UNAUTHENTICATED",
                }
            }
            return web.json_response(body, status=401)
        return None

    async def _play_list(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("play", request)
        if forced := self._forced_answer("play", seen):
            return forced
        if refused := self._play_auth(request):
            seen.status = refused.status
            return refused
        start = int(request.query.get("token") or 0)
        size = min(int(request.query.get("maxResults", "100")), self.page_size)
        chunk = self.reviews[start : start + size]
        data: dict[str, Any] = {
            "reviews": [
                {
                    "reviewId": r.id,
                    "authorName": r.author,
                    "comments": [
                        {
                            "userComment": {
                                "text": f"{r.title}\t{r.text}" if r.title else r.text,
                                "lastModified": {
                                    "seconds": str(int(r.time.timestamp())),
                                    "nanos": 5000,
                                },
                                "starRating": r.rating,
                                "reviewerLanguage": "en",
                                "appVersionName": "4.5.6",
                            }
                        }
                    ],
                }
                for r in chunk
            ],
            "pageInfo": {"totalResults": len(chunk), "resultPerPage": size, "startIndex": start},
        }
        if start + size < len(self.reviews):
            data["tokenPagination"] = {"nextPageToken": str(start + size)}
        return self._send(seen, request, json.dumps(data).encode(), "application/json")

    async def _play_reply(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("play_reply", request)
        if forced := self._forced_answer("play_reply", seen):
            return forced
        if not request.match_info["review"].endswith(":reply"):
            seen.status = 404
            return web.json_response({"error": {"code": 404, "status": "NOT_FOUND"}}, status=404)
        if refused := self._play_auth(request):
            seen.status = refused.status
            return refused
        text = json.loads(seen.body)["replyText"]
        seen.status = 200
        return web.json_response(
            {"result": {"replyText": text, "lastEdited": {"seconds": str(int(time.time()))}}}
        )

    # A generic reply endpoint.

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record("reply", request)
        if forced := self._forced_answer("reply", seen):
            return forced
        seen.status = 201
        return web.json_response({"ok": True}, status=201)
