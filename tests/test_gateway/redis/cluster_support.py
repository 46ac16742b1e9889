"""A Redis Cluster on loopback for the tests: three masters, each a child process of the test
on a free port, joined with `redis-cli --cluster create`, stopped (and their files removed)
afterwards; and a live reshard of one slot done by hand, as an operator's tool does it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest
import redis
from sentinel_support import DEADLINE_S, poll

from gateway.redis.cluster import tenant_slot
from gateway.redis.embedded import RedisServer, find_redis_server, pick_free_port

HOST = "127.0.0.1"


def cluster_cli() -> str:
    """redis-cli, or skip naming the Debian packages to install."""
    if find_redis_server() is None or shutil.which("redis-server") is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")
    found = shutil.which("redis-cli")
    if found is None:
        pytest.skip("redis-cli not found: apt-get install redis-tools (Debian package)")
    return found


class ClusterSet:
    """``count`` masters, no replicas, every slot covered."""

    def __init__(self, count: int = 3) -> None:
        self.cli = cluster_cli()
        self.count = count
        self.servers: list[RedisServer] = []

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers if server.port is not None]

    @property
    def addresses(self) -> list[str]:
        return [f"{HOST}:{port}" for port in self.ports]

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host=HOST, port=port, decode_responses=True)

    def start(self) -> ClusterSet:
        for _ in range(self.count):
            server = RedisServer(
                persistent=False,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    # The bus port is the data port + 10000 unless told: free ports run high.
                    "--cluster-port",
                    str(pick_free_port()),
                ],
            )
            self.servers.append(server.start())
        subprocess.run(
            [self.cli, "--cluster", "create", *self.addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=DEADLINE_S,
        )
        for port in self.ports:
            node = self.node(port)
            poll(lambda n=node: n.cluster("info")["cluster_state"] == "ok", f"node {port} ok")
            poll(
                lambda n=node: len(n.cluster("nodes")) == self.count,
                f"node {port} to know every master",
            )
        return self

    def node_id(self, port: int) -> str:
        return str(self.node(port).execute_command("CLUSTER", "MYID"))

    def owner(self, slot: int, asked: int | None = None) -> int:
        """The port of the master that node ``asked`` (the first, by default) says has it."""
        node = self.node(asked or self.ports[0])
        for start, end, master, *_ in node.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise AssertionError(f"no master serves slot {slot}")

    def tenant_owner(self, tenant: str) -> int:
        return self.owner(tenant_slot(tenant))

    def reshard(self, slot: int, target: int, batch: int = 5) -> int:
        """Move ``slot`` to the master on port ``target`` while traffic goes on: IMPORTING
        and MIGRATING, its keys moved a few at a time with MIGRATE, then SETSLOT NODE on
        every master. Returns how many keys moved."""
        source = self.owner(slot)
        assert source != target, "the slot is there already"
        src, dst = self.node(source), self.node(target)
        src_id, dst_id = self.node_id(source), self.node_id(target)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", HOST, target, "", 0, 10_000, "KEYS", *keys)
            moved += len(keys)
        for port in (target, source, *self.ports):
            self.node(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for port in self.ports:
            poll(lambda p=port: self.owner(slot, p) == target, f"node {port} to see the move")
        return moved

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()


@contextlib.contextmanager
def cluster_set(count: int = 3) -> Iterator[ClusterSet]:
    setup = ClusterSet(count)
    try:
        yield setup.start()
    finally:
        setup.stop()
