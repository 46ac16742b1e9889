"""Redis clients with every setting chosen explicitly (redis-py 8's defaults bite: a 5 s
socket timeout, a pool that fails the 101st concurrent call, RESP3).

With ``[redis] sentinels`` the same clients find the master through the sentinels
(gateway/redis/failover.py); ``url``, if set, then gives only the credentials, database and
TLS of the data nodes, its host and port being the sentinels' to say; with ``[redis]
cluster_nodes`` they talk to the master of the tenant's slot (gateway/redis/cluster.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, parse_url
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from gateway.config import RedisConfig
from gateway.redis.cluster import Route, SlotOwnerConnection, SlotOwnerSSLConnection, SlotRoute
from gateway.redis.failover import SwitchWatch, make_sentinel
from gateway.redis.lane import LaneRedis


class LaneMasterConnection(SentinelManagedConnection):
    """The lane's connection on Sentinel: it asks where the master is when it connects, and
    leaves an answer READONLY to the lane (which knows what else in flight did not run)
    instead of turning it into a lost connection as redis-py's does."""

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        return await Connection.read_response(self, *args, **kwargs)


class LaneMasterSSLConnection(LaneMasterConnection, SSLConnection):
    pass


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Connections to the master the sentinels name, waiting for a free one when all are
    busy, as the pool without Sentinel does."""


def _client_options(config: RedisConfig) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "protocol": 2,
        "decode_responses": False,
        "health_check_interval": 30,
    }


def make_redis(
    url: str | None,
    config: RedisConfig,
    sentinel: Sentinel | None = None,
    tenant: str | None = None,
) -> Redis:
    """The bytes-mode client for commands and scripts. Commands, scripts and pipelines share
    one multiplexed connection (gateway/redis/lane.py); WATCH and pipelines of scripts wait
    for a free pooled connection instead of failing when the pool is busy."""
    options = _client_options(config)
    if sentinel is None:
        assert url is not None
        pool = BlockingConnectionPool.from_url(
            url, max_connections=config.pool_size, timeout=config.socket_timeout_s, **options
        )
        return LaneRedis(
            connection_pool=pool, timeout_s=config.socket_timeout_s, route=Route(tenant)
        )
    tls, node = _data_node_options(url)
    pool = BlockingSentinelPool(
        config.sentinel_master,
        sentinel,
        max_connections=config.pool_size,
        timeout=config.socket_timeout_s,
        connection_class=SentinelManagedSSLConnection if tls else SentinelManagedConnection,
        **options,
        **node,
    )
    lane_class = LaneMasterSSLConnection if tls else LaneMasterConnection
    return LaneRedis(
        connection_pool=pool,
        timeout_s=config.socket_timeout_s,
        lane_connection=lane_class(**pool.connection_kwargs),
    )


def make_pubsub_redis(
    url: str | None, config: RedisConfig, sentinel: Sentinel | None = None
) -> Redis:
    """The subscriber's own client: it waits for messages indefinitely, so no socket timeout."""
    options = {**_client_options(config), "socket_timeout": None}
    if sentinel is None:
        assert url is not None
        return Redis.from_url(url, **options)
    tls, node = _data_node_options(url)
    pool = SentinelConnectionPool(
        config.sentinel_master,
        sentinel,
        connection_class=SentinelManagedSSLConnection if tls else SentinelManagedConnection,
        **options,
        **node,
    )
    return Redis(connection_pool=pool)


def _data_node_options(url: str | None) -> tuple[bool, dict[str, Any]]:
    """From ``url``: whether the data nodes speak TLS, and their credentials, database and
    TLS options (host, port and socket path are left to the sentinels)."""
    if not url:
        return False, {}
    options: dict[str, Any] = dict(parse_url(url))
    tls = options.pop("connection_class", Connection) is SSLConnection
    for name in ("host", "port", "path"):
        options.pop(name, None)
    return tls, options


def make_cluster_redis(url: str | None, config: RedisConfig, tenant: str) -> tuple[Redis, Redis]:
    """On a Redis Cluster: the command client and the subscriber's, both to the master of
    the tenant's slot, wherever it moves (the subscriber asks the cluster afresh each time
    it connects: it connects again when the slot moves and its shard channel with it)."""
    tls, node = _data_node_options(url)
    node.pop("db", None)  # a cluster has database 0 only
    options = _client_options(config)
    route = SlotRoute(
        config.cluster_nodes,
        tenant,
        {**node, **options, "ssl": tls, "socket_timeout": config.socket_timeout_s},
    )
    connection_class = SlotOwnerSSLConnection if tls else SlotOwnerConnection
    pool = BlockingConnectionPool(
        max_connections=config.pool_size,
        timeout=config.socket_timeout_s,
        connection_class=connection_class,
        route=route,
        **options,
        **node,
    )
    redis = LaneRedis(
        connection_pool=pool,
        timeout_s=config.socket_timeout_s,
        route=route,
        lane_connection=connection_class(**pool.connection_kwargs),
    )
    subscriber_pool = ConnectionPool(
        connection_class=connection_class,
        route=route,
        fresh_on_connect=True,
        **{**options, "socket_timeout": None},
        **node,
    )
    return redis, Redis(connection_pool=subscriber_pool)


@dataclass
class RedisClients:
    """What a process talks to Redis with: the command client, the subscriber's client and,
    on Sentinel, the sentinels and the watch for failovers. The app owns one."""

    redis: Any
    subscriber: Any
    sentinel: Sentinel | None = None
    watch: SwitchWatch | None = None
    _closed: bool = field(default=False, repr=False)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.subscriber.aclose()
        await self.redis.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def open_clients(url: str | None, config: RedisConfig, tenant: str | None = None) -> RedisClients:
    """The clients for ``url``, for the master of ``[redis] sentinels`` or for the master of
    the tenant's slot on ``[redis] cluster_nodes``; on Sentinel the command client connects
    again as soon as a failover is announced."""
    if config.cluster_nodes:
        assert tenant is not None, "a cluster client is for one tenant's slot"
        return RedisClients(*make_cluster_redis(url, config, tenant))
    if not config.sentinels:
        return RedisClients(make_redis(url, config, tenant=tenant), make_pubsub_redis(url, config))
    sentinel = make_sentinel(config)
    redis = make_redis(url, config, sentinel)
    clients = RedisClients(redis, make_pubsub_redis(url, config, sentinel), sentinel)
    clients.watch = SwitchWatch(config)

    async def follow(address: tuple[str, int]) -> None:
        await redis.lane.reconnect(f"the sentinels moved the master to {address[0]}:{address[1]}")
        await redis.connection_pool.get_master_address()  # and drops idle pooled connections

    clients.watch.on_switch(follow)
    return clients
