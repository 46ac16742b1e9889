"""The flows' one notion of now: milliseconds since the epoch, the unit every Redis score
and Lua script takes. The clock is injected (``Clock``) so a test or the bench can run
the flows on simulated time; ``at_ms`` turns such a time into the datetime a message
carries."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def at_ms(now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, UTC)
