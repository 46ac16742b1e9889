"""One webhook's delivery loop, run by every gateway process: each reads the tenant's event
stream through the webhook's consumer group, so that an event goes to one process, and posts
it, signed (adapters/signing.py), until the receiver answers 2xx.

At least once: an event is acknowledged only after a 2xx; one a process read and did not
acknowledge (it died, even by SIGKILL) is claimed by another once it has been idle for
``claim_after_s`` (XAUTOCLAIM). A process retrying an event, or holding it behind an earlier
one, touches it before each look so that it is not claimed from under it.

In order per conversation: an event is sent only when it is its conversation's earliest
unacknowledged event for this webhook (store.py notes each as it is read, in the same Lua
call), so a later event waits while an earlier one is pending or retrying on any process.
Different conversations go out concurrently (``concurrency``); each round takes the earliest
held event of every conversation, touches them in one Lua call and acknowledges the
delivered ones in one MULTI, so that Redis costs a few round trips per round, not per event.

Retries back off exponentially with jitter up to ``backoff_max_s``; an event still failing
``retry_for_s`` after its first failure is parked (the dead letter, in Redis), and the
conversation's next events go on. A replayed dead letter is sent again with its own id."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import msgspec

from adapters.loops import Outage, stop_if_cancelled
from adapters.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from gateway.events.config import WebhookConfig
from gateway.events.metrics import WebhookMetrics
from gateway.events.store import Parked, WebhookStore
from router.events import Event

log = logging.getLogger("zhongtai.webhooks")

EVENT_ID_HEADER = "X-Zhongtai-Event-Id"
EVENT_TYPE_HEADER = "X-Zhongtai-Event-Type"
LAG_EVERY_S = 2.0
REPLAY_EVERY_S = 1.0
ERROR_CHARS = 300


@dataclass
class Held:
    """An event this process read (or claimed) and has not acknowledged."""

    event: Event
    attempts: int = 0
    next_at: float = 0.0  # monotonic


class WebhookWorker:
    def __init__(
        self,
        hook: WebhookConfig,
        store: WebhookStore,
        session: aiohttp.ClientSession,
        metrics: WebhookMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hook, self.store, self.session, self.metrics = hook, store, session, metrics
        self.clock = clock
        self.held: dict[str, Held] = {}
        self._next_claim = 0.0
        self._next_lag = 0.0
        self._replay_attempts = 0
        self._next_replay = 0.0
        self._limit = asyncio.Semaphore(hook.concurrency)

    async def run(self) -> None:
        outage = Outage(log, f"webhook {self.hook.name}")
        ready = False
        while True:
            try:
                if not ready:
                    await self.store.ensure_group()
                    ready = True
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                if "NOGROUP" in str(exc):
                    ready = False  # the stream or the group went (a flushed Redis): make it again
                await asyncio.sleep(max(self.hook.poll_interval_s, outage.failed(exc)))
                continue
            outage.succeeded()
            stop_if_cancelled()
            if not busy:
                await asyncio.sleep(self._idle_wait())

    async def round(self) -> bool:
        """Claim, read, send what is due; whether anything came or went."""
        hook, now = self.hook, time.monotonic()
        came = 0
        if now >= self._next_claim:
            self._next_claim = now + hook.claim_after_s / 2
            claimed = await self.store.claim_idle(int(hook.claim_after_s * 1000), hook.batch)
            came += self._hold(claimed)
        if len(self.held) < hook.batch * 4:
            came += self._hold(await self.store.read_new(hook.batch, hook.events))
        sent = await self._send_due()
        if now >= self._next_replay:
            sent += await self._send_replay()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            self.metrics.lag.labels(hook.name).set(await self.store.lag())
        return bool(came or sent)

    def _hold(self, events: list[Event]) -> int:
        new = [e for e in events if e.id not in self.held]
        for event in new:
            self.held[event.id] = Held(event)
        return len(new)

    def _idle_wait(self) -> float:
        now = time.monotonic()
        soonest = min((h.next_at for h in self.held.values()), default=now + 3600)
        return max(0.005, min(self.hook.poll_interval_s, soonest - now))

    async def _send_due(self) -> int:
        """Each conversation's earliest held event, when due: touched in one call, posted
        concurrently, the delivered ones acknowledged in one MULTI. A conversation's next
        event goes in the next round, once this one is acknowledged."""
        now = time.monotonic()
        heads: dict[str, Held] = {}
        for held in sorted(self.held.values(), key=lambda h: _order(h.event.id)):
            heads.setdefault(held.event.conversation_id, held)
        due = [h for h in heads.values() if h.next_at <= now]
        if not due:
            return 0
        outcomes = await self.store.touch([h.event for h in due])
        ready = []
        for held, outcome in zip(due, outcomes, strict=True):
            if outcome == "lost":
                self.held.pop(held.event.id, None)
            elif outcome == "wait":
                held.next_at = now + self.hook.poll_interval_s
            else:
                ready.append(held)
        errors = await asyncio.gather(*(self._post_limited(h.event) for h in ready))
        delivered = [h for h, error in zip(ready, errors, strict=True) if error is None]
        await self.store.acknowledge([h.event for h in delivered])
        for held in delivered:
            self.held.pop(held.event.id, None)
        if delivered:
            self.metrics.deliveries.labels(self.hook.name, "delivered").inc(len(delivered))
        settled = len(delivered)
        for held, error in zip(ready, errors, strict=True):
            if error is None:
                continue
            held.attempts += 1
            if await self._gave_up(held.event, held.event.id, held.attempts, error):
                self.held.pop(held.event.id, None)
                settled += 1
            else:
                held.next_at = time.monotonic() + self.backoff(held.attempts)
        return settled

    async def _post_limited(self, event: Event) -> str | None:
        async with self._limit:
            return await self.post(event)

    async def _send_replay(self) -> int:
        lease_ms = int(self.hook.claim_after_s * 1000)
        parked = await self.store.next_replay(lease_ms)
        if parked is None:
            # Replays are rare: looked for once a second, not every round.
            self._next_replay = time.monotonic() + max(self.hook.poll_interval_s, REPLAY_EVERY_S)
            return 0
        error = await self.post(parked.event)
        if error is None:
            await self.store.replayed(parked.event)
            self.metrics.deliveries.labels(self.hook.name, "delivered").inc()
            self._replay_attempts = 0
            return 1
        self._replay_attempts += 1
        slot = f"replay:{parked.event.id}"
        if await self._gave_up(parked.event, slot, self._replay_attempts, error):
            self._replay_attempts = 0
            return 1
        self._next_replay = time.monotonic() + self.backoff(self._replay_attempts)
        return 0

    async def _gave_up(self, event: Event, slot: str, attempts: int, error: str) -> bool:
        """Count a failed attempt; park the event when it has failed for retry_for_s."""
        name = self.hook.name
        self.metrics.deliveries.labels(name, "failed").inc()
        now_ms = int(self.clock() * 1000)
        first = await self.store.first_failure(slot, now_ms)
        if now_ms - first < self.hook.retry_for_s * 1000:
            log.debug("webhook %s: event %s failed (%s), retrying", name, event.id, error)
            return False
        parked = Parked(event=event, parked_at=now_ms, attempts=attempts, last_error=error)
        await self.store.park(event, parked, from_replay=slot.startswith("replay:"))
        self.metrics.deliveries.labels(name, "parked").inc()
        log.warning(
            "webhook %s: event %s (%s) parked after %d attempts: %s",
            name,
            event.id,
            event.type,
            attempts,
            error,
            extra={"conversation": event.conversation_id},
        )
        return True

    def backoff(self, attempts: int) -> float:
        """Exponential, capped, with jitter (half to all of the step), so that the processes
        retrying one receiver do not come back in step."""
        hook = self.hook
        step = min(hook.backoff_max_s, hook.backoff_initial_s * 2 ** min(attempts - 1, 30))
        return step * (0.5 + 0.5 * random.random())

    async def post(self, event: Event) -> str | None:
        """Send one event; None on a 2xx, else what went wrong."""
        body = msgspec.json.encode(event)
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.hook.secret or "", timestamp, body),
            EVENT_ID_HEADER: event.id,
            EVENT_TYPE_HEADER: event.type,
        }
        timeout = aiohttp.ClientTimeout(total=self.hook.timeout_s)
        try:
            # A redirect is not followed: it is no 2xx, and followed, a 301 or 302 turns the
            # POST into a GET without the event, which a page answering 200 would acknowledge.
            async with self.session.post(
                self.hook.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return None
                text = (await response.text(errors="replace"))[:ERROR_CHARS]
                if location := response.headers.get("Location"):
                    text = f"redirected to {location}; set url to it. {text}"
                return f"HTTP {response.status}: {text}"[:ERROR_CHARS].strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
