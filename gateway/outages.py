"""How a background loop lives through its dependency (Redis, a feed) being down: it says so
once when the trouble starts, with the traceback, and once when it ends, with how long it
lasted, and in between it waits longer after each failure (with jitter, so that the loops of
several processes do not hammer a recovering Redis in step). A 20 s Redis outage used to
write a traceback every 250 ms per loop."""

from __future__ import annotations

import logging
import random
import time


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
