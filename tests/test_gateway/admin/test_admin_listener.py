"""The admin listener has its own address: a public --host no longer puts /metrics and the
admin API on that address too; and /metrics takes a bearer token when one is configured."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from harness import admin_ready, make_config, running
from helpers import free_port, wait_until

from gateway.serve import run_gateway

# Another loopback address: a listener bound to 127.0.0.1 does not answer on it, one bound
# to 0.0.0.0 does; so the test needs no network interface of the machine's.
OTHER_ADDRESS = "127.0.0.2"


async def _connects(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
    except OSError:
        return False
    writer.close()
    return True


async def test_a_public_host_leaves_the_admin_port_on_loopback(tenant, redis_url):
    port, admin_port = free_port(), free_port()
    config = make_config(
        tenant, server={"tenant": tenant, "host": "0.0.0.0", "port": port, "admin_port": admin_port}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_gateway(config, redis_url, stop))
    try:
        await wait_until(lambda: admin_ready(admin_port), timeout=30)
        assert await _connects(OTHER_ADDRESS, port)
        assert not await _connects(OTHER_ADDRESS, admin_port)
        assert await _connects("127.0.0.1", admin_port)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=30)


@pytest.fixture
def config(tenant):
    return make_config(tenant, admin={"metrics_token": "m-token"})


async def test_metrics_need_the_metrics_token_and_probes_do_not(config, redis_url):
    async with running(config, redis_url) as gw, aiohttp.ClientSession() as http:
        url = f"{gw.admin_base}/metrics"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "m-token"}):
            async with http.get(url, headers=headers) as reply:
                assert reply.status == 401
                assert "metrics_token" in await reply.text()
                assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(url, headers={"Authorization": "Bearer m-token"}) as reply:
            assert reply.status == 200
            assert "zhongtai_slow_clients_closed_total" in await reply.text()
        for probe in ("/healthz", "/readyz"):
            async with http.get(f"{gw.admin_base}{probe}") as reply:
                assert reply.status == 200


def test_the_metrics_token_comes_from_the_environment_too(tenant):
    from adapters import registry
    from gateway.config import parse_config

    data = {"server": {"tenant": tenant}}
    env = {"ZHONGTAI_METRICS_TOKEN": "from-env"}
    config = parse_config(data, "<test>", registry.config_types([]), env=env)
    assert config.core.admin.metrics_token == "from-env"
    assert config.server.admin_host == "127.0.0.1"
