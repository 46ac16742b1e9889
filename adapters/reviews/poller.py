"""Polling one feed: fetch its pages, take their reviews, remember the cursor, and decide
when to poll next (the interval, a backoff after failures, or the feed's Retry-After).

Nothing is lost or repeated when a feed misbehaves:

- a page that fails (an HTTP error, garbage, truncated JSON or XML) is not taken at all; the
  pages before it are, and the cursor and ETag stay where they were, so the next poll reads
  the failed page again;
- a review listed twice (on one page or across pages) is taken once per poll, and every
  review's last version is in Redis, so a re-poll, a feed that starts over, or a restarted
  gateway repeats nothing;
- a feed that refuses our cursor (400, 404, 410 or 422 to a request carrying it) is read again
  from the start, in the same poll;
- reviews older than max_age_s are recorded but not made into conversations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from redis.exceptions import LockError

from adapters.loops import Outage, stop_if_cancelled
from adapters.reviews import feeds
from adapters.reviews.config import FeedConfig, ReviewsConfig
from adapters.reviews.cursor import FeedCursor, FeedState, now_ms
from adapters.reviews.feeds import FeedError
from adapters.reviews.intake import Intake, IntakeBusy, Outcome
from adapters.reviews.review import Review
from adapters.reviews.store import ReviewStore

log = logging.getLogger("zhongtai.reviews")

CURSOR_REFUSED = frozenset({400, 404, 410, 422})
# A poll that takes longer than this loses its lease, and another process may poll.
LEASE_S = 300.0
# How often a process that did not poll looks whether the feed is due.
IDLE_CHECK_S = 5.0


@dataclass
class PollReport:
    outcomes: dict[str, int] = field(default_factory=dict)
    pages: int = 0
    not_modified: bool = False
    unreadable: int = 0
    error: str = ""

    def count(self, outcome: Outcome) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Poller:
    def __init__(
        self,
        config: ReviewsConfig,
        feed: FeedConfig,
        intake: Intake,
        store: ReviewStore,
        cursor: FeedCursor,
        session: aiohttp.ClientSession,
    ) -> None:
        self.config, self.feed, self.intake = config, feed, intake
        self.store, self.cursor, self.session = store, cursor, session
        self.attempted = asyncio.Event()  # this process tried a poll, or saw one in Redis
        # Polls this process made, and the last one's report (for logs and tests).
        self.polls = 0
        self.last_report: PollReport | None = None

    # The loop.

    async def run(self) -> None:
        # The feed's own failures are handled in step() (its backoff, Retry-After); what
        # escapes it is Redis away, say: said once, retried later, never the end of the loop.
        outage = Outage(log, f"reviews {self.feed.name}: the poll loop")
        while True:
            try:
                wait_s = await self.step()
                outage.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                wait_s = max(self.config.backoff_base_s, outage.failed(exc))
            stop_if_cancelled()
            await asyncio.sleep(wait_s)

    async def step(self) -> float:
        """Poll if the feed is due and no other process is polling it; return how long to
        sleep before looking again."""
        state = await self.cursor.load()
        if state.polled_at_ms:
            self.attempted.set()
        due_in_s = (state.next_at_ms - now_ms()) / 1000
        if due_in_s > 0:
            return min(due_in_s, self.feed.poll_s, IDLE_CHECK_S)
        lease = self.cursor.lease(LEASE_S)
        if not await lease.acquire(token=uuid.uuid4().hex.encode()):
            return min(self.feed.poll_s, IDLE_CHECK_S)
        try:
            # Another process may have polled between our look and our lease.
            state = await self.cursor.load()
            if state.next_at_ms > now_ms():
                return min((state.next_at_ms - now_ms()) / 1000, IDLE_CHECK_S)
            await self.poll_once(state)
        finally:
            try:
                await lease.release()
            except LockError:
                log.debug("reviews %s: the lease ran out during the poll", self.feed.name)
        self.attempted.set()
        next_at_ms = (await self.cursor.load()).next_at_ms
        return min(max(0.0, (next_at_ms - now_ms()) / 1000), IDLE_CHECK_S)

    async def poll_once(self, state: FeedState | None = None) -> PollReport:
        """One poll, its outcome recorded in Redis with the next time to poll."""
        state = state or await self.cursor.load()
        report = PollReport()
        try:
            return await self._poll_and_schedule(state, report)
        finally:
            self.polls += 1
            self.last_report = report

    async def _poll_and_schedule(self, state: FeedState, report: PollReport) -> PollReport:
        try:
            validators = await self._poll(state, report)
        except FeedError as exc:
            report.error = exc.reason
            failures = state.failures + 1
            delay = self._backoff_s(failures, exc.retry_after_s)
            log.warning(
                "reviews %s: poll failed (%d in a row), next in %.1f s: %s",
                self.feed.name,
                failures,
                delay,
                exc.reason,
            )
            await self.cursor.save(
                failures=failures,
                next_at_ms=now_ms() + int(delay * 1000),
                polled_at_ms=now_ms(),
                last_error=exc.reason[:500],
            )
            return report
        updates: dict[str, object] = {
            "failures": 0,
            "next_at_ms": now_ms() + int(self.feed.poll_s * 1000),
            "polled_at_ms": now_ms(),
            "ok_at_ms": now_ms(),
            "first_done": True,
            "last_error": "",
        }
        updates.update(validators)
        await self.cursor.save(**updates)
        if set(report.outcomes) - {"unchanged"} or report.unreadable:
            log.info(
                "reviews %s: polled %d page(s): %s%s",
                self.feed.name,
                report.pages,
                report.outcomes,
                f", {report.unreadable} unreadable" if report.unreadable else "",
            )
        return report

    def _backoff_s(self, failures: int, retry_after_s: float | None) -> float:
        base = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (failures - 1))
        # Jitter upwards only: never earlier than the backoff or the feed's Retry-After.
        delay = base * (1 + random.random() * 0.25)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.config.max_retry_after_s))
        return delay

    # One poll.

    async def _poll(self, state: FeedState, report: PollReport) -> dict[str, object]:
        """Read the pages, take their reviews; return the validators and cursor to save.
        Raises FeedError after taking what the pages before the failure held."""
        cursor = state.cursor
        try:
            collected, complete, first = await self._read_pages(state, cursor, report)
        except FeedError as exc:
            if not (exc.cursor_refused and cursor):
                raise
            log.warning(
                "reviews %s: the feed refused cursor %r (%s); reading it from the start",
                self.feed.name,
                cursor,
                exc.reason,
            )
            cursor = ""
            await self.cursor.save(cursor="", etag="", last_modified="")
            collected, complete, first = await self._read_pages(FeedState(), cursor, report)
        if first is None:
            report.not_modified = True
            return {}
        baseline = self.feed.baseline_first_poll and not state.first_done
        await self._take_all(collected.reviews, report, baseline)
        if collected.failure is not None:
            raise collected.failure
        if self.feed.complete and complete:
            await self._deletions(collected.reviews, report)
        saved: dict[str, object] = {"etag": first.etag, "last_modified": first.last_modified}
        newest = self._cursor_of(collected.reviews, cursor)
        if newest != cursor:
            saved["cursor"] = newest
        return saved

    async def _read_pages(
        self, state: FeedState, cursor: str, report: PollReport
    ) -> tuple[_Collected, bool, feeds.Fetched | None]:
        """Pages in order until the last, a known page, max_pages or a failure. Returns the
        reviews (first occurrence of each id), whether the listing was read whole (to its
        last page, every item readable: only then may a missing review count as deleted),
        and the first page's answer (None: 304 Not Modified)."""
        collected = _Collected()
        # After a failed poll, read on past known pages: the failure may have stopped the
        # last poll before pages that still hold reviews we never took.
        stop_at_known = self.feed.stop_at_known and state.failures == 0
        url: str | None = feeds.first_url(self.feed, cursor)
        visited: set[str] = set()
        first: feeds.Fetched | None = None
        whole = True  # every item of every page read so far could be read
        for number in range(self.feed.max_pages):
            if url is None or url in visited:
                # No next link we may follow, or a loop: the listing was not read to its end.
                return collected, False, first
            visited.add(url)
            headers = self._headers()
            if number == 0:
                headers.update(_conditional(state))
            try:
                fetched = await feeds.fetch(
                    self.session,
                    url,
                    headers,
                    timeout_s=self.config.request_timeout_s,
                    max_bytes=self.config.max_page_bytes,
                )
                if number == 0 and fetched.status == 304:
                    return collected, False, None
                if fetched.status == 304:
                    raise FeedError("304 Not Modified for a page we sent no validator for")
                page = await feeds.parse_async(self.feed, fetched.body)
            except FeedError as exc:
                if number == 0:
                    exc.cursor_refused = bool(cursor) and exc.status in CURSOR_REFUSED
                    raise
                collected.failure = FeedError(
                    f"page {number + 1}: {exc.reason}",
                    status=exc.status,
                    retry_after_s=exc.retry_after_s,
                )
                return collected, False, first
            if number == 0:
                first = fetched
            report.pages += 1
            if page.unreadable:
                whole = False
                report.unreadable += len(page.unreadable)
                log.warning(
                    "reviews %s: %d item(s) left out of page %d: %s",
                    self.feed.name,
                    len(page.unreadable),
                    number + 1,
                    "; ".join(page.unreadable[:5]),
                )
            fresh = collected.add(page.reviews)
            if not page.next or not (page.reviews or page.unreadable):
                # The last page. A listing with unreadable items is not whole: a review we
                # could not read must not look deleted.
                return collected, whole, first
            if stop_at_known and not await self._anything_new(fresh):
                return collected, False, first
            url = feeds.next_url(self.feed, url, page.next)
        return collected, False, first  # max_pages: there was more

    async def _anything_new(self, reviews: list[Review]) -> bool:
        states = await self.store.get_many([r.id for r in reviews])
        return (
            any(
                s is None or s.deleted != r.deleted or s.hash != r.version_hash()
                for r, s in zip(reviews, states, strict=True)
            )
            or not reviews
        )

    async def _take_all(self, reviews: list[Review], report: PollReport, baseline: bool) -> None:
        now = datetime.now(UTC)
        # Oldest first, so that within a priority the older review waits in front.
        ordered = list(reversed(reviews))
        if all(r.time is not None for r in ordered):
            ordered.sort(key=lambda r: r.time or now)
        for review in ordered:
            stop_if_cancelled()
            try:
                outcome = await self.intake.take(review, polled=True, baseline=baseline, now=now)
            except IntakeBusy as exc:
                raise FeedError(str(exc)) from exc
            report.count(outcome)

    async def _deletions(self, listed: list[Review], report: PollReport) -> None:
        seen = {r.id for r in listed}
        if not seen:
            # An empty "complete" listing is far likelier a feed's bad day than every review
            # deleted at once.
            log.warning(
                "reviews %s: complete listing came back empty; no deletions inferred",
                self.feed.name,
            )
            return
        for review_id in await self.store.ids():
            if review_id not in seen:
                outcome = await self.intake.delete(review_id)
                if outcome == "deleted":
                    report.count(outcome)

    def _cursor_of(self, reviews: list[Review], current: str) -> str:
        if self.feed.cursor == "time":
            times = [r.time for r in reviews if r.time is not None]
            if not times:
                return current
            newest = max(times).astimezone(UTC).isoformat().replace("+00:00", "Z")
            return max(current, newest) if current else newest
        if self.feed.cursor == "id":
            ids = [r.id for r in reviews] + ([current] if current else [])
            if not ids:
                return current
            if all(i.isdigit() for i in ids):
                return max(ids, key=int)
            return max(ids)
        return current

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.config.user_agent, "Accept": _ACCEPT[self.feed.kind]}
        headers.update(self.feed.headers)
        for name, env in self.feed.headers_env.items():
            if value := os.environ.get(env):
                headers[name] = value
        if self.feed.google_play is not None:
            token = self.feed.google_play.token()
            if not token:
                raise FeedError("google_play: no access token (access_token, _env or _file)")
            headers["Authorization"] = f"Bearer {token}"
        return headers


_ACCEPT = {
    "json": "application/json",
    "appstore": "application/json",
    "google_play": "application/json",
    "rss": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5",
}


class _Collected:
    def __init__(self) -> None:
        self.reviews: list[Review] = []
        self._ids: set[str] = set()
        self.failure: FeedError | None = None

    def add(self, reviews: list[Review]) -> list[Review]:
        """Keep the first listing of each id (feeds list the newest first)."""
        fresh = []
        for review in reviews:
            if review.id not in self._ids:
                self._ids.add(review.id)
                self.reviews.append(review)
                fresh.append(review)
        return fresh


def _conditional(state: FeedState) -> dict[str, str]:
    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers
