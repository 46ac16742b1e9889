"""Helpers for the gateway's long-running background loops."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop.

    A library can swallow a cancellation that lands while it finishes a call (Python 3.11's
    wait_for does, for one); a loop that only catches Exception would then run on, and the
    shutdown that waits for it would hang. Checking the task's own cancel requests once per
    round ends the loop whatever swallowed the exception."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
