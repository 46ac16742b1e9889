"""The metrics token from end to end: the deployments send what the gateways expect (compose's
default token and Prometheus' token file agree, the ServiceMonitor reads a key the Secret
has), the image puts the admin port where probes and Prometheus reach it, and a real
Prometheus with the committed job's authorization block scrapes a gateway that has a
metrics token (up 1), while one with the wrong token is refused (up 0)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest
import yaml
from harness import make_config, running
from helpers import free_port, wait_until
from obs_support import DEPLOY, NO_PROMETHEUS, PROMETHEUS_CONFIG

TOKEN_FILE = PROMETHEUS_CONFIG.parent / "metrics-token"


def zhongtai_job() -> dict:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "zhongtai"]
    return job


def test_compose_gateways_send_the_token_prometheus_reads():
    job = zhongtai_job()
    assert job["authorization"]["type"] == "Bearer"
    assert (PROMETHEUS_CONFIG.parent / job["authorization"]["credentials_file"]) == TOKEN_FILE
    token = TOKEN_FILE.read_text("utf-8").strip()
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text("utf-8"))["services"]
    for name, service in services.items():
        if name.startswith("gateway-"):
            default = re.fullmatch(
                r"\$\{ZHONGTAI_METRICS_TOKEN:-(.*)\}",
                service["environment"]["ZHONGTAI_METRICS_TOKEN"],
            )
            assert default and default.group(1) == token, name


def test_the_image_puts_the_admin_port_where_probes_reach_it():
    entrypoint = next(
        line
        for line in (DEPLOY / "Dockerfile").read_text("utf-8").splitlines()
        if line.startswith("ENTRYPOINT")
    )
    assert '"--admin-host", "0.0.0.0"' in entrypoint


@pytest.mark.parametrize("name", ["base", "sentinel", "cluster"])
def test_the_service_monitor_reads_the_token_from_the_gateways_secret(name):
    from test_kubernetes import one, render, secret_env

    objects = render(name)
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    credentials = endpoint["authorization"]["credentials"]
    secret = one(objects, "Secret")
    assert credentials["name"] == secret["metadata"]["name"]  # the generated name
    assert credentials["key"] in secret_env(objects)


def _prometheus_config(directory: Path, port: int, token: str) -> Path:
    """The committed job's authorization, pointed at one gateway and a token file."""
    directory.mkdir()
    (directory / "metrics-token").write_text(token + "\n")
    job = {
        "job_name": "zhongtai",
        "scrape_interval": "1s",
        "authorization": zhongtai_job()["authorization"],
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
    }
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    return config


async def _scrape_health(tmp_path: Path, port: int, token: str) -> str:
    """Run Prometheus with the committed job's authorization on the gateway at ``port``
    until it has scraped it once; the target's health ("up" or "down")."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip(NO_PROMETHEUS)
    config = _prometheus_config(tmp_path, port, token)
    web = free_port()
    with open(tmp_path / "prometheus.log", "w") as log:  # noqa: ASYNC230
        process = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{web}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            async with aiohttp.ClientSession() as http:

                async def scraped() -> str | None:
                    assert process.poll() is None, "prometheus exited; see prometheus.log"
                    try:
                        async with http.get(f"http://127.0.0.1:{web}/api/v1/targets") as reply:
                            targets = (await reply.json())["data"]["activeTargets"]
                    except (aiohttp.ClientError, ValueError, KeyError):
                        return None
                    health = targets[0]["health"] if targets else "unknown"
                    return None if health == "unknown" else health

                return await wait_until(scraped, timeout=30, interval=0.2)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 10)


async def test_prometheus_scrapes_with_the_token_and_not_without(tenant, redis_url, tmp_path):
    config = make_config(tenant, admin={"metrics_token": "scrape-me"})
    async with running(config, redis_url) as gw:
        assert await _scrape_health(tmp_path / "good", gw.admin_port, "scrape-me") == "up"
        assert await _scrape_health(tmp_path / "bad", gw.admin_port, "wrong") == "down"
