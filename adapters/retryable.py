"""Redis loading its data after a restart (it answers LOADING to every command until done),
out of reach for a moment (restarting, failing over) or refusing writes (a node demoted to
a replica answers READONLY), is not the sender's fault nor a bug:
a customer, an agent or a channel that sends then is told to send again, with a retryable
code or a 503 with Retry-After, and no traceback is logged per message (the background
loops say once that Redis is away, adapters/loops.py). Here, beside the other boundary
helpers, because adapters may import only adapters and the gateway's sockets share it."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRY_AFTER_S = 5
CODE = "unavailable"
DETAIL = "the service is briefly unavailable; send this again in a few seconds"


def redis_loading(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is Redis answering LOADING."""
    return _caused_by(exc, (BusyLoadingError,))


# Refusals of a node that takes no writes for now, each before running anything: READONLY
# (a replica: a failover demoted it, or it was pointed at a master), MASTERDOWN (a replica
# cut off from its master), on a cluster CLUSTERDOWN and TRYAGAIN. NOREPLICAS (a master
# short of the replicas its min-replicas-to-write asks for) has no class of its own.
REFUSALS = (ReadOnlyError, MasterDownError, ClusterDownError, TryAgainError)


def redis_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc``, or what caused it, is Redis loading, unreachable, not answering or
    refusing writes for now (redis-py's own errors: an OSError of ours is not taken for one).
    A demoted node answers READONLY until it is a master again: the sender is not at fault
    and the call ran nothing, so it is retryable, not ``internal`` with a traceback."""
    return _caused_by(exc, (RedisConnectionError, RedisTimeoutError, *REFUSALS), noreplicas)


def noreplicas(exc: BaseException) -> bool:
    """NOREPLICAS: a master short of the replicas its min-replicas-to-write asks for."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOREPLICAS")


def _caused_by(
    exc: BaseException | None,
    kinds: tuple[type[BaseException], ...],
    also: Callable[[BaseException], bool] = lambda _: False,
) -> bool:
    seen = 0
    while exc is not None and seen < 10:  # a chain of causes, never a cycle followed forever
        if isinstance(exc, kinds) or also(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


# Said of a message ingest stored but no replica confirmed in time (adapters.contract's
# NotDurable): an expected refusal during a failover, answered as a 503 without a traceback.
NOT_REPLICATED = "stored but not yet on a replica ([redis] min_replica_acks); send it again"


def loading_response(text: str = DETAIL) -> web.Response:
    """503 with Retry-After: what a channel's callback (a webhook, WeChat) is answered."""
    return web.Response(status=503, text=text + "\n", headers={"Retry-After": str(RETRY_AFTER_S)})
