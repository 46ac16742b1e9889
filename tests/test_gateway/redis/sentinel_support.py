"""A Redis Sentinel set-up on loopback for the tests: a master, a replica and sentinels, each
a child process of the test on a free port, stopped (and its files removed) afterwards."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.redis.embedded import (
    RedisServer,
    _parent_death_hook,
    find_redis_server,
    pick_free_port,
)

MASTER = "mymaster"
DEADLINE_S = 60.0  # generous: the machine may be busy


def sentinel_binary() -> str:
    """redis-sentinel, or skip naming the Debian packages to install."""
    if find_redis_server() is None or shutil.which("redis-server") is None:
        pytest.skip("redis-server not found: apt-get install redis-server (Debian package)")
    found = shutil.which("redis-sentinel")
    if found is None:
        pytest.skip("redis-sentinel not found: apt-get install redis-sentinel (Debian package)")
    return found


def poll(predicate, what: str, timeout: float = DEADLINE_S):  # type: ignore[no-untyped-def]
    """Poll a blocking predicate until truthy (set-up only, before the event loop's part)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except redis.RedisError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class SentinelSet:
    """One master, one replica, ``count`` sentinels watching them as ``mymaster``."""

    def __init__(self, count: int = 3) -> None:
        self.count = count
        self.binary = sentinel_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="zhongtai-sentinel-"))
        self.master: RedisServer | None = None
        self.replica: RedisServer | None = None
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def start(self) -> SentinelSet:
        self.master = RedisServer(persistent=False).start()
        self.replica = RedisServer(
            persistent=False, extra_args=["--replicaof", "127.0.0.1", str(self.master.port)]
        ).start()
        replica = redis.Redis(port=self.replica.port, decode_responses=True)
        poll(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica's link to the master",
        )
        for i in range(self.count):
            self._start_sentinel(i, quorum=min(2, self.count))
        for port in self.ports:
            sentinel = redis.Redis(port=port, decode_responses=True)
            poll(lambda s=sentinel: s.sentinel_slaves(MASTER), "the sentinels to see the replica")
            poll(
                lambda s=sentinel: (
                    s.sentinel_master(MASTER)["num-other-sentinels"] >= self.count - 1
                ),
                "the sentinels to see each other",
            )
        return self

    def _start_sentinel(self, i: int, quorum: int) -> None:
        assert self.master is not None
        port = pick_free_port()
        conf = self.dir / f"sentinel-{i}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"logfile {self.dir / f'sentinel-{i}.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} {quorum}\n"
            f"sentinel down-after-milliseconds {MASTER} 5000\n"
            f"sentinel failover-timeout {MASTER} 20000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        proc = subprocess.Popen(
            [self.binary, str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_parent_death_hook(),
        )
        self._procs.append(proc)
        self.ports.append(port)
        client = redis.Redis(port=port)
        poll(client.ping, f"sentinel {i} on port {port}")

    def master_port(self) -> int:
        """Where the sentinels say the master is now."""
        sentinel = redis.Redis(port=self.ports[0], decode_responses=True)
        return int(sentinel.sentinel_get_master_addr_by_name(MASTER)[1])

    def failover(self) -> int:
        """SENTINEL FAILOVER; returns once every sentinel names the replica as master, and the
        old master is a replica of it (nothing more can be written to the old one)."""
        assert self.master is not None and self.replica is not None
        redis.Redis(port=self.ports[0]).execute_command("SENTINEL", "FAILOVER", MASTER)
        new = self.replica.port
        for port in self.ports:
            sentinel = redis.Redis(port=port, decode_responses=True)
            poll(
                lambda s=sentinel: int(s.sentinel_get_master_addr_by_name(MASTER)[1]) == new,
                "every sentinel to name the new master",
            )
        old = redis.Redis(port=self.master.port, decode_responses=True)
        poll(lambda: old.info("replication")["role"] == "slave", "the old master to turn replica")
        return new

    def stop(self) -> None:
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in (self.replica, self.master):
            if server is not None:
                server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def sentinel_set(count: int = 3) -> Iterator[SentinelSet]:
    setup = SentinelSet(count)
    try:
        yield setup.start()
    finally:
        setup.stop()
