"""Redis Cluster: every key of a tenant carries the ``{tenant}`` hash tag, so a tenant lives in
one hash slot, on one master at a time. The gateway keeps its one multiplexed connection
(gateway/redis/lane.py) and its pool pointed at that master, and follows the slot when it
moves: a MOVED answer names the new master (the slot was resharded, or a replica took over),
an ASK answer names where a key being migrated already is (sent there after ASKING, once).
Where the slot is at start-up, and after a lost connection, is asked of the cluster through
redis-py's RedisCluster (its slot map, from any of ``[redis] cluster_nodes``).

Off a cluster, the same answers mean the gateway was pointed at the wrong node: ``Route``
turns them into an error that says so instead of a bare "MOVED 11304 host:port"."""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, ConnectionPool, SSLConnection
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# A slot moves once per reshard: more redirections in a row than this is a loop.
MAX_REDIRECTS = 16


class NotOwner(ResponseError):
    """A node that does not own the tenant's slot, and no cluster configured to find the one
    that does."""


def tenant_slot(tenant: str) -> int:
    """The hash slot of every key of ``tenant`` (they all carry ``{tenant}``)."""
    return key_slot(tenant.encode())


def cluster_addresses(nodes: list[str]) -> list[tuple[str, int]]:
    """``[redis] cluster_nodes`` as (host, port); config.py has checked the shape."""
    pairs = (address.rpartition(":") for address in nodes)
    return [(host.strip("[]"), int(port)) for host, _, port in pairs]


class Route:
    """Where a tenant's commands go after a redirection: off a cluster, nowhere (an error)."""

    clustered = False

    def __init__(self, tenant: str | None) -> None:
        self.tenant = tenant

    def note_moved(self, error: AskError) -> None:
        """A connection read MOVED: remember where the slot went (on a cluster)."""

    def moved(self, error: AskError) -> None:
        """A command was answered MOVED: send it again (on a cluster) or raise NotOwner."""
        whose = f"tenant {self.tenant!r}'s" if self.tenant else "the tenant's"
        raise NotOwner(
            f"this node does not own {whose} slot ({error.slot_id}, served by "
            f"{error.host}:{error.port}); configure [redis] cluster_nodes"
        )

    async def asking(self, error: AskError, commands: list[tuple[Any, ...]]) -> list[Any]:
        """The raw answers (errors as values) of ``commands`` sent where ASK says."""
        self.moved(error)
        return []

    async def aclose(self) -> None:
        pass


class SlotRoute(Route):
    """The master of the tenant's slot: asked of the cluster, then followed through MOVED."""

    clustered = True

    def __init__(self, nodes: list[str], tenant: str, node_options: dict[str, Any]) -> None:
        super().__init__(tenant)
        self.slot = tenant_slot(tenant)
        self.node_options = node_options
        self.cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster_addresses(nodes)],
            require_full_coverage=False,  # other tenants' slots being down is not ours
            **node_options,
        )
        self.owner: tuple[str, int] | None = None
        self.stale = True
        self.redirections = 0  # MOVED and ASK answers followed (for tests and logs)
        self._ready = False
        self._asking: dict[tuple[str, int], ConnectionPool] = {}

    async def locate(self, fresh: bool = False) -> tuple[str, int]:
        """The address of the slot's master, asked of the cluster when not known (or stale)."""
        if self.owner is None or self.stale or fresh:
            if not self._ready:
                await self.cluster.initialize()
                self._ready = True
            else:
                await self.cluster.nodes_manager.initialize()
            node = self.cluster.nodes_manager.get_node_from_slot(self.slot)
            if node is None:
                raise RedisConnectionError(f"no master serves slot {self.slot} of {self.tenant!r}")
            self.owner, self.stale = (node.host, int(node.port)), False
        return self.owner

    def note_moved(self, error: AskError) -> None:
        address = (error.host, int(error.port))
        self.redirections += 1
        if address != self.owner:
            self.owner, self.stale = address, False
            log.info(
                "Redis Cluster: tenant %s's slot %s moved to %s:%d",
                self.tenant,
                error.slot_id,
                *address,
            )

    def moved(self, error: AskError) -> None:
        self.note_moved(error)

    async def asking(self, error: AskError, commands: list[tuple[Any, ...]]) -> list[Any]:
        # ASKING holds for the next command only (or a whole MULTI...EXEC): one per batch.
        address = (error.host, int(error.port))
        self.redirections += 1
        pool = self._asking.get(address)
        if pool is None:
            pool = self._asking[address] = ConnectionPool(
                host=address[0], port=address[1], **self._connection_options()
            )
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(
                connection.pack_commands([("ASKING",), *commands]), check_health=False
            )
            answers = []
            for _ in range(len(commands) + 1):
                try:
                    answers.append(await connection.read_response())
                except ResponseError as refused:
                    answers.append(refused)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return answers[1:]

    def _connection_options(self) -> dict[str, Any]:
        options = dict(self.node_options)
        if options.pop("ssl", False):
            options["connection_class"] = SSLConnection
        return options

    async def aclose(self) -> None:
        for pool in self._asking.values():
            await pool.disconnect()
        await self.cluster.aclose()


class SlotOwnerConnection(Connection):
    """A connection to the master of the tenant's slot, wherever that is when it connects;
    one left connected to a node the slot has since left is made again to the new one."""

    def __init__(self, *, route: SlotRoute, fresh_on_connect: bool = False, **kwargs: Any):
        self.route, self.fresh_on_connect = route, fresh_on_connect
        super().__init__(**kwargs)

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected and (self.host, self.port) != self.route.owner:
            await self.disconnect()
        if not self.is_connected:
            try:
                self.host, self.port = await self.route.locate(self.fresh_on_connect)
            except RedisError as exc:
                raise RedisConnectionError(f"cannot find the tenant's slot master: {exc}") from exc
        try:
            await super().connect_check_health(check_health, retry_socket_connect)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            self.route.stale = True  # a master down: ask the cluster which replica took over
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except MovedError as error:
            self.route.note_moved(error)
            raise


class SlotOwnerSSLConnection(SlotOwnerConnection, SSLConnection):
    pass
