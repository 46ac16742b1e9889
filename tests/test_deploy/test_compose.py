"""The compose files: `docker compose config` (or Debian's docker-compose; no engine needed)
accepts each, and, checked structurally, every service restarts on its own, Redis and the
sentinels answer a redis-cli ping health check, the gateways' health check is the admin
port's /readyz, and nothing starts before what it needs is healthy. The Sentinel variant has
one master, one replica and three sentinels watching the master the gateways' config
names."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import redis
import yaml
from obs_support import DEPLOY, ROOT, run_clean

from gateway.redis.embedded import RedisServer, find_redis_server, pick_free_port
from gateway.redis.embedded.sentinels import SENTINEL_HINT, poll, sentinel_binary

FILES = ["compose.yaml", "compose.sentinel.yaml"]


def services(name: str) -> dict[str, dict]:
    return yaml.safe_load((DEPLOY / name).read_text("utf-8"))["services"]


def gateways(name: str) -> dict[str, dict]:
    return {k: v for k, v in services(name).items() if k.startswith("gateway-")}


@pytest.mark.parametrize("name", FILES)
def test_every_service_restarts_on_its_own(name):
    for service, spec in services(name).items():
        assert spec.get("restart") in ("unless-stopped", "always"), service


@pytest.mark.parametrize("name", FILES)
def test_redis_servers_answer_a_ping_health_check(name):
    redis = {k: v for k, v in services(name).items() if k.startswith(("redis", "sentinel"))}
    assert redis
    for service, spec in redis.items():
        test = spec["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "redis-cli" and test[-1] == "ping", service


@pytest.mark.parametrize("name", FILES)
def test_gateways_are_healthy_when_ready_and_wait_for_healthy_redis(name):
    found = gateways(name)
    assert len(found) >= 2
    for service, spec in found.items():
        test = " ".join(spec["healthcheck"]["test"])
        assert "http://127.0.0.1:9180/readyz" in test, service
        depends = spec["depends_on"]
        assert isinstance(depends, dict), f"{service}: depends_on without conditions"
        assert any(k.startswith("redis") for k in depends), service
        for needed, condition in depends.items():
            assert condition == {"condition": "service_healthy"}, f"{service} on {needed}"
        grace = int(re.fullmatch(r"(\d+)s", spec["stop_grace_period"]).group(1))
        assert grace > 10, "shutdown_timeout_s (10 s) and the close must fit"


@pytest.mark.parametrize("name", FILES)
def test_everything_depended_on_exists_and_has_a_health_check(name):
    found = services(name)
    for service, spec in found.items():
        for needed, condition in (spec.get("depends_on") or {}).items():
            assert needed in found, f"{service} depends on unknown {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in found[needed], needed


def test_the_sentinel_variant_has_a_master_a_replica_and_three_sentinels():
    found = services("compose.sentinel.yaml")
    sentinels = {k: v for k, v in found.items() if k.startswith("sentinel-")}
    assert len(sentinels) == 3
    assert "redis-master" in found
    (replica,) = [v for k, v in found.items() if k.startswith("redis-replica")]
    assert replica["command"][-3:] == ["--replicaof", "redis-master", "6379"]
    config = tomllib.loads((DEPLOY / "zhongtai.sentinel.toml").read_text("utf-8"))["redis"]
    master = config["sentinel_master"]
    for service, spec in sentinels.items():
        script = " ".join(spec["command"])
        assert f"sentinel monitor {master} redis-master 6379 2" in script, service
        assert "redis-sentinel" in script and spec["healthcheck"]["test"][2:4] == ["-p", "26379"]
    assert sorted(config["sentinels"]) == sorted(f"{s}:26379" for s in sentinels)
    assert "url" not in config
    for spec in gateways("compose.sentinel.yaml").values():
        assert "ZHONGTAI_REDIS_URL" not in spec.get("environment", {})
        assert "./zhongtai.sentinel.toml:/etc/zhongtai/zhongtai.toml:ro" in spec["volumes"]


NO_COMPOSE = (
    "neither `docker compose` nor docker-compose found: apt-get install docker-compose "
    "(Debian package docker-compose; `config` needs no Docker engine)"
)


def compose_command() -> list[str]:
    """`docker compose` (the v2 plugin) where it answers, else Debian's docker-compose: both
    parse a file against the Compose schema without an engine."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip(NO_COMPOSE)
    return [legacy]


@pytest.mark.parametrize("name", FILES)
def test_docker_compose_config_accepts_the_file(name):
    """What an operator runs before `up`: unknown keys, a depends_on on a missing service or
    a bad healthcheck field fail here rather than on the day of the deployment."""
    done = run_clean([*compose_command(), "-f", str(DEPLOY / name), "config"], DEPLOY)
    assert done.returncode == 0, done.stdout + done.stderr
    # What compose understood, not just that it parsed: the services and their conditions.
    rendered = yaml.safe_load(done.stdout)["services"]
    assert rendered.keys() == services(name).keys()
    for service, spec in gateways(name).items():
        assert rendered[service]["depends_on"] == spec["depends_on"], service
        assert rendered[service]["restart"] == "unless-stopped", service


def test_the_sentinels_script_starts_a_sentinel_that_watches_the_master(tmp_path):
    """The config the sentinels' shell command writes, run by Debian's redis-sentinel: the
    printf's folded lines and every directive must be ones Sentinel takes. Only what a
    machine without compose's network needs is changed: the addresses and the file's path."""
    if find_redis_server() is None or sentinel_binary() is None:
        pytest.skip(f"redis-server or redis-sentinel not found: {SENTINEL_HINT}")
    (script,) = services("compose.sentinel.yaml")["sentinel-1"]["command"]
    assert services("compose.sentinel.yaml")["sentinel-1"]["entrypoint"] == ["sh", "-c"]
    master = tomllib.loads((DEPLOY / "zhongtai.sentinel.toml").read_text("utf-8"))["redis"]
    port = pick_free_port()
    with RedisServer(persistent=False) as redis_master:
        local = (
            script.replace("port 26379", f"port {port}")
            .replace("redis-master 6379", f"127.0.0.1 {redis_master.port}")
            .replace("/tmp/sentinel.conf", str(tmp_path / "sentinel.conf"))
        )
        assert local.count(str(tmp_path)) == 2 and str(redis_master.port) in local
        proc = subprocess.Popen(
            ["sh", "-c", local], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        sentinel = redis.Redis(port=port, decode_responses=True)
        name = master["sentinel_master"]

        def watching() -> Any:
            if proc.poll() is not None:  # refused its config: say why, at once
                raise AssertionError(proc.communicate()[0].decode(errors="replace"))
            return sentinel.sentinel_get_master_addr_by_name(name)

        try:
            address = poll(watching, "the compose sentinel to watch the master")
            assert address == ("127.0.0.1", redis_master.port), address
            settings = sentinel.sentinel_master(name)
            assert settings["quorum"] == 2 and settings["down-after-milliseconds"] == 5000
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize("name", FILES)
def test_the_gateways_config_is_valid_and_serves_web_chat(name):
    """What the gateways mount as their config passes check-config and enables the web
    chat its queues take: a queue on a channel no adapter serves gets no customer."""
    mounts = {
        volume.split(":")[0]
        for spec in gateways(name).values()
        for volume in spec["volumes"]
        if volume.split(":")[1] == "/etc/zhongtai/zhongtai.toml"
    }
    (source,) = mounts
    path = (DEPLOY / source).resolve()
    done = run_clean([sys.executable, "-m", "gateway", "check-config", str(path)], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    served = re.search(r"channels: ([a-z, ]+?)(?:, \d+ warnings)?\)", done.stdout)
    assert served, done.stdout
    assert "webchat" in served.group(1).split(", "), done.stdout
