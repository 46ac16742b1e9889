"""Redis clients with every setting chosen explicitly (redis-py 8's defaults bite: a 5 s
socket timeout, a pool that fails the 101st concurrent call, RESP3)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from gateway.config import RedisConfig
from gateway.redis.lane import LaneRedis


def make_redis(url: str, config: RedisConfig) -> Redis:
    """The bytes-mode client for commands and scripts. Commands, scripts and pipelines share
    one multiplexed connection (gateway/redis/lane.py); WATCH and pipelines of scripts wait
    for a free pooled connection instead of failing when the pool is busy."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=config.pool_size,
        timeout=config.socket_timeout_s,
        socket_timeout=config.socket_timeout_s,
        socket_connect_timeout=config.connect_timeout_s,
        protocol=2,
        decode_responses=False,
        health_check_interval=30,
    )
    return LaneRedis(connection_pool=pool, timeout_s=config.socket_timeout_s)


def make_pubsub_redis(url: str, config: RedisConfig) -> Redis:
    """The subscriber's own client: it waits for messages indefinitely, so no socket timeout."""
    return Redis.from_url(
        url,
        protocol=2,
        decode_responses=False,
        socket_timeout=None,
        socket_connect_timeout=config.connect_timeout_s,
        health_check_interval=30,
    )
