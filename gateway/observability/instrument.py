"""Instrumentation at the gateway's choke points, kept out of the modules that do the work:
the public app's request timer, the Lua scripts' timer, handle time across processes, and
the count of logged errors. docs/operations.md lists the metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter, Histogram

from gateway.observability.metrics import Metrics

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The public app.


def request_timer(metrics: Metrics, adapters: Iterable[str]) -> Middleware:
    """An aiohttp middleware timing every request but websocket upgrades (a socket's life is
    not a handling time), labelled by the first path segment when it names an adapter
    (/wechat/..., /reviews/..., /webchat/...) or is ``agent``, else ``other``."""
    known = frozenset(adapters) | {"agent"}

    @web.middleware
    async def timed(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        first = request.path.lstrip("/").partition("/")[0]
        adapter = first if first in known else "other"
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away
            raise
        finally:
            metrics.webhook_seconds.labels(adapter).observe(time.perf_counter() - started)
            metrics.webhook_requests.labels(adapter, f"{status // 100}xx").inc()
            if status >= 500 and adapter not in ("other", "agent"):
                metrics.adapter_errors.labels(adapter, "webhook").inc()

    return timed


# Redis scripts.


class TimedScript:
    """A registered script (redis-py's AsyncScript) whose calls are timed and whose failures
    are counted; called exactly like the script it wraps."""

    def __init__(self, script: Any, seconds: Histogram, errors: Counter) -> None:
        self.script, self._seconds, self._errors = script, seconds, errors

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return await self.script(keys=keys, args=args, client=client)
        except Exception:
            self._errors.inc()
            raise
        finally:
            self._seconds.observe(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.script, name)


def instrument_scripts(metrics: Metrics, *owners: Any) -> None:
    """Wrap the scripts that presence.lua.Scripts loaded for each owner (the Router,
    Presence) in TimedScript, labelled by script name. The packages that own the scripts stay
    free of the gateway: their calls go through ``self._scripts[name]``."""
    for owner in owners:
        scripts: dict[str, Any] | None = getattr(owner, "_scripts", None)
        if not isinstance(scripts, dict):
            log.warning("%s has no scripts to time", type(owner).__name__)
            continue
        for name, script in list(scripts.items()):
            if not isinstance(script, TimedScript):
                scripts[name] = TimedScript(
                    script,
                    metrics.script_seconds.labels(name),
                    metrics.script_errors.labels(name),
                )


# Handle time: the accept and the close may happen on different processes, so the accept
# time is kept in Redis (one hash per tenant, field = conversation, removed at the close).


class _Router(Protocol):
    redis: Any
    keys: Any


class _Board(Protocol):
    metrics: Metrics
    router: Any

    def clock(self) -> int: ...


def accepted_at_key(router: _Router) -> str:
    return f"{router.keys.prefix}obs:accepted_at"


async def mark_accepted(router: _Router, conversation_id: str, now_ms: int) -> None:
    """Remember when the conversation's current agent took it (accept or auto-assign)."""
    try:
        await router.redis.hset(accepted_at_key(router), conversation_id, now_ms)
    except Exception as exc:
        log.warning("could not record the accept time of %s: %s", conversation_id, exc)


async def observe_close(
    board: _Board,
    conversation_id: str,
    conversation: Any,
    holder: str | None,
    reason: str,
    close_reason: str = "none",
) -> None:
    """Count the close by reason (and by the agent's close reason, already bounded to a
    label) and, when an agent held it, observe the handle time."""
    metrics, router = board.metrics, board.router
    queue = conversation.queue if conversation is not None else "unknown"
    metrics.closed.labels(queue, reason, close_reason).inc()
    key = accepted_at_key(router)
    try:
        async with router.redis.pipeline(transaction=False) as pipe:
            pipe.hget(key, conversation_id)
            pipe.hdel(key, conversation_id)
            raw, _ = await pipe.execute()
    except Exception as exc:
        log.warning("could not read the accept time of %s: %s", conversation_id, exc)
        return
    if holder and raw:
        metrics.handle.labels(queue).observe(max(0.0, (board.clock() - int(raw)) / 1000))


# Logged errors.

COMPONENTS = {
    "gateway": "gateway",
    "zhongtai": "gateway",
    "adapters": "adapters",
    "router": "router",
    "presence": "presence",
    "aiohttp": "aiohttp",
    "asyncio": "asyncio",
    "redis": "redis",
}


class ErrorCounter(logging.Handler):
    """Counts records at level error or above by top-level package; writes nothing."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        component = COMPONENTS.get(record.name.partition(".")[0], "other")
        self.metrics.errors_logged.labels(component).inc()
