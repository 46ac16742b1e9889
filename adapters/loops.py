"""How the long-running background loops of the gateway and of the adapters (sweeps, pollers,
subscriptions) live through their dependency (Redis, a feed) being down, and how they stop.

An outage is said once when the trouble starts, with the traceback, and once when it ends,
with how long it lasted; in between the loop waits longer after each failure (with jitter, so
that the loops of several processes do not hammer a recovering Redis in step). A 20 s Redis
outage used to write a traceback every 250 ms per loop. Adapters import nothing from the
gateway, so this lives with them and the gateway uses it too."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable


def stop_if_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop.

    A library can swallow a cancellation that lands while it finishes a call (Python 3.11's
    wait_for does, inside redis-py and aioimaplib); a loop that only catches Exception would
    then run on, and the shutdown that waits for it would hang. Checking the task's own cancel
    requests once per round ends the loop whatever swallowed the exception."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Outage:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        first_delay_s: float = 0.25,
        max_delay_s: float = 10.0,
        random_fraction: float = 0.5,
    ) -> None:
        self.log, self.what = log, what
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.random_fraction = random_fraction
        self.failures = 0
        self.since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Note a failure; the seconds to wait before trying again."""
        self.failures += 1
        if self.failures == 1:
            self.since = time.monotonic()
            self.log.warning(
                "%s failed; retrying with backoff until it works again", self.what, exc_info=exc
            )
        else:
            self.log.debug("%s failed again (%d in a row): %s", self.what, self.failures, exc)
        step = min(self.max_delay_s, self.first_delay_s * 2 ** min(self.failures - 1, 30))
        return step * (1 - self.random_fraction * random.random())

    def succeeded(self) -> None:
        if not self.failures:
            return
        lasted = time.monotonic() - (self.since or time.monotonic())
        self.log.warning(
            "%s works again after %.1f s and %d failed attempts", self.what, lasted, self.failures
        )
        self.failures, self.since = 0, None


async def repeat_forever(
    outage: Outage, step: Callable[[], Awaitable[object]], interval_s: float
) -> None:
    """Run ``step`` every ``interval_s`` until cancelled. While it fails, wait the outage's
    backoff, but never less than the interval: a sweep due every 10 s is not tried four
    times a second because Redis is away."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled()
            await asyncio.sleep(max(interval_s, outage.failed(exc)))
            continue
        outage.succeeded()
        stop_if_cancelled()
        await asyncio.sleep(interval_s)
