"""``POST /reviews/{feed}``: reviews pushed to us, signed.

Headers: ``X-Zhongtai-Timestamp`` (unix seconds) and ``X-Zhongtai-Signature:
sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>``. The body is one review or a
JSON list of them, read through the feed's field mapping (default
``{id, author, rating?, title?, text, time?, product?, url?, deleted?}``).

Answers (a JSON body ``{"error", "detail"}`` on every refusal, never a traceback):
202 stored; 400 malformed, naming the field; 401 unsigned, badly signed or stale; 404 no such
feed (or the feed takes no pushes); 409 a replay (this signature was already accepted: the
reviews are stored); 413 too large; 503 not stored, retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from adapters.contract import NotDurable
from adapters.inputs import NestedTooDeeply, client_fault, decode_json
from adapters.retryable import NOT_REPLICATED, loading_response, redis_unavailable
from adapters.reviews.config import FeedConfig, FieldMap, ReviewsConfig, webhook_secret
from adapters.reviews.feeds import review_from_mapping
from adapters.reviews.intake import Intake, IntakeBusy
from adapters.reviews.review import Review, ReviewError
from adapters.reviews.store import ReviewStore
from adapters.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signature_matches

log = logging.getLogger("zhongtai.reviews")

_DEFAULT_FIELDS = FieldMap()
# sign is imported from here by senders and tests since before adapters/signing.py.
__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "Webhook", "sign"]


def _refuse(status: int, error: str, detail: str) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status)


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.response = _refuse(status, error, detail)


class Webhook:
    def __init__(
        self,
        config: ReviewsConfig,
        parts: Callable[[str], tuple[FeedConfig, Intake, ReviewStore] | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config, self.parts, self.clock = config, parts, clock

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{feed}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle(request)
        except Refused as refused:
            return refused.response
        except Exception as exc:
            if client_fault(request, exc):
                raise  # a hang-up or a broken body: the gateway answers 400, quietly
            if redis_unavailable(exc):  # Redis loading or away a moment: push it again soon
                return loading_response("the review was not stored; Redis is unavailable, retry")
            if isinstance(exc, NotDurable):  # a failover's refusal: the retry is a duplicate
                return loading_response(f"the review was {NOT_REPLICATED}")
            log.exception("reviews webhook %s failed", request.match_info.get("feed"))
            return _refuse(503, "unavailable", "the review was not stored; retry later")

    async def _handle(self, request: web.Request) -> web.Response:
        name = request.match_info["feed"]
        found = self.parts(name)
        if found is None or not webhook_secret(found[0]):
            raise Refused(404, "unknown_feed", f"no feed {name!r} takes pushed reviews")
        feed, intake, store = found
        body = await self._body(request)
        signature = self._verify(request, feed, body)
        reviews = self._reviews(feed, body)
        # A replay is refused only once the request is known good, so a malformed push that
        # is corrected and re-signed with the same timestamp is not called a replay.
        if not await store.first_use(signature, 2 * feed.timestamp_tolerance_s):
            raise Refused(409, "replayed", "this signed request was already accepted")
        results = []
        try:
            for review in reviews:
                outcome = await intake.take(review, polled=False)
                results.append({"id": review.id, "outcome": outcome})
        except Exception as exc:
            # Not stored (or not all of it): the sender may retry the same signed request.
            await store.forget_use(signature)
            if isinstance(exc, IntakeBusy):
                raise Refused(503, "busy", str(exc)) from exc
            raise
        return web.json_response({"stored": len(results), "results": results}, status=202)

    async def _body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, "too_large", f"the body is over {limit} bytes")
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise Refused(413, "too_large", f"the body is over {limit} bytes")
        return bytes(body)

    def _verify(self, request: web.Request, feed: FeedConfig, body: bytes) -> str:
        timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
        given = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not timestamp or not given:
            missing = TIMESTAMP_HEADER if not timestamp else SIGNATURE_HEADER
            raise Refused(401, "unsigned", f"missing {missing}")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise Refused(401, "bad_timestamp", f"{TIMESTAMP_HEADER} must be unix seconds")
        expected = sign(webhook_secret(feed), timestamp, body)
        if not signature_matches(webhook_secret(feed), timestamp, body, given):
            raise Refused(401, "bad_signature", "the signature does not match the body")
        skew = abs(self.clock() - int(timestamp))
        if skew > feed.timestamp_tolerance_s:
            raise Refused(
                401,
                "stale",
                f"the timestamp is {skew:.0f} s away from now "
                f"(tolerance {feed.timestamp_tolerance_s:g} s)",
            )
        return expected

    def _reviews(self, feed: FeedConfig, body: bytes) -> list[Review]:
        try:
            data: Any = decode_json(msgspec.json.decode, body)
        except NestedTooDeeply as exc:
            raise Refused(400, "malformed", str(exc)) from None
        except msgspec.DecodeError as exc:
            raise Refused(400, "malformed", f"not JSON: {exc}") from None
        items = data if isinstance(data, list) else [data]
        if not items:
            raise Refused(400, "malformed", "an empty list: no reviews")
        if len(items) > self.config.max_reviews_per_request:
            limit = self.config.max_reviews_per_request
            raise Refused(413, "too_many", f"at most {limit} reviews per request")
        fields = feed.fields if feed.kind == "json" else _DEFAULT_FIELDS
        reviews: list[Review] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"[{i}]." if isinstance(data, list) else ""
            try:
                review = review_from_mapping(
                    item, fields, rating_scale=feed.rating_scale, require_author=True
                )
            except ReviewError as exc:
                raise Refused(400, "malformed", f"{where}{exc.field}: {exc.problem}") from None
            if review.id not in seen:  # one push listing a review twice takes it once
                seen.add(review.id)
                reviews.append(review)
        return reviews
