"""Redis loading its data after a restart (it answers LOADING to every command until done),
or out of reach for a moment (restarting, failing over), is not the sender's fault nor a bug:
a customer, an agent or a channel that sends then is told to send again, with a retryable
code or a 503 with Retry-After, and no traceback is logged per message (the background
loops say once that Redis is away, gateway/outages.py). Here, beside the other boundary
helpers, because adapters may import only adapters and the gateway's sockets share it."""

from __future__ import annotations

from aiohttp import web
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRY_AFTER_S = 5
CODE = "unavailable"
DETAIL = "the service is briefly unavailable; send this again in a few seconds"


def redis_loading(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is Redis answering LOADING."""
    return _caused_by(exc, (BusyLoadingError,))


def redis_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is Redis loading, unreachable or not answering
    (redis-py's own errors: an OSError of ours is not taken for one)."""
    return _caused_by(exc, (RedisConnectionError, RedisTimeoutError))


def _caused_by(exc: BaseException | None, kinds: tuple[type[BaseException], ...]) -> bool:
    seen = 0
    while exc is not None and seen < 10:  # a chain of causes, never a cycle followed forever
        if isinstance(exc, kinds):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


# Said of a message ingest stored but no replica confirmed in time (adapters.contract's
# NotDurable): an expected refusal during a failover, answered as a 503 without a traceback.
NOT_REPLICATED = "stored but not yet on a replica ([redis] min_replica_acks); send it again"


def loading_response(text: str = DETAIL) -> web.Response:
    """503 with Retry-After: what a channel's callback (a webhook, WeChat) is answered."""
    return web.Response(status=503, text=text + "\n", headers={"Retry-After": str(RETRY_AFTER_S)})
