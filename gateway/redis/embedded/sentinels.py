"""A Redis Sentinel set-up on loopback: a master, a replica and sentinels, each a child process
on a free port, stopped (and its files removed) afterwards.

Two users, the test suite (failover tests) and the benchmarks (the cost of
``min_replica_acks``): both need the same set-up, so it lives here beside ``RedisServer``
rather than in either. Set-up waits poll with a generous deadline, since the machine may be
busy; a wait that runs out raises ``RedisServerError`` naming what it waited for.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import redis

from gateway.redis.embedded.child import parent_death_hook
from gateway.redis.embedded.errors import RedisServerError
from gateway.redis.embedded.ports import pick_free_port
from gateway.redis.embedded.server import RedisServer

MASTER = "mymaster"
DEADLINE_S = 60.0  # generous: the machine may be busy
SENTINEL_HINT = "apt-get install redis-sentinel (Debian package)"

T = TypeVar("T")


def sentinel_binary() -> str | None:
    """The redis-sentinel executable on the PATH, or None."""
    return shutil.which("redis-sentinel")


def poll(predicate: Callable[[], T], what: str, timeout: float = DEADLINE_S) -> T:
    """Poll a blocking predicate until truthy (set-up only, outside any event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
        except redis.RedisError:
            result = None  # type: ignore[assignment]
        if result:
            return result
        if time.monotonic() > deadline:
            raise RedisServerError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class SentinelSet:
    """One master, one replica, ``count`` sentinels watching them as ``mymaster``."""

    def __init__(self, count: int = 3) -> None:
        binary = sentinel_binary()
        if binary is None:
            raise RedisServerError(f"redis-sentinel not found: {SENTINEL_HINT}")
        self.count = count
        self.binary = binary
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
        if self.master is None:
            raise RedisServerError("start the master before the sentinels")
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
            preexec_fn=parent_death_hook(),
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
        if self.master is None or self.replica is None:
            raise RedisServerError("the Sentinel set is not started")
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
