"""`zhongtai serve`: start the embedded Redis when none is configured, run the public and
admin sites, and on SIGTERM or SIGINT stop taking work, close sockets and exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from adapters import registry
from adapters.contract import Adapter
from gateway.app import WEB_APPS, build_apps, public_runner, public_site
from gateway.config import Config
from gateway.masking import mask_credentials
from gateway.redis.embedded import RedisServer

log = logging.getLogger("zhongtai")


def adapter_classes(config: Config) -> Mapping[str, type[Adapter]]:
    return {name: registry.load(name) for name in config.adapters}


async def run_gateway(config: Config, redis_url: str, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    app, admin = build_apps(config, redis_url, adapter_classes(config))
    server = config.server
    runner = public_runner(app, server.shutdown_timeout_s)
    admin_runner = web.AppRunner(admin, access_log=None)
    await runner.setup()
    await admin_runner.setup()
    try:
        await public_site(runner, server.host, server.port).start()
        await web.TCPSite(admin_runner, server.admin_host, server.admin_port).start()
        log.info("%s", startup_line(config, app[WEB_APPS]))
        await stop.wait()
        log.info("stopping: closing sockets and finishing work in flight")
    finally:
        await runner.cleanup()
        await admin_runner.cleanup()
    log.info("stopped")


def startup_line(config: Config, web_apps: list[str]) -> str:
    """What is really on, and where: only what this configuration runs."""
    server = config.server
    public = f"http://{server.host}:{server.port}"
    admin = f"http://{server.admin_host}:{server.admin_port}"
    sockets = f"ws://{server.host}:{server.port}"
    on = [f"console {public}/console/", f"agent socket {sockets}/agent/ws"]
    on += [f"{path.strip('/')} {public}{path}" for path in web_apps]
    if config.core.supervisors:
        on.append(f"supervisor socket {sockets}/supervisor/ws")
    if config.core.admin.token:
        on.append(f"admin API {admin}/api (Bearer [admin] token)")
    else:
        on.append("admin API off (no [admin] token)")
    token = " (Bearer [admin] metrics_token)" if config.core.admin.metrics_token else ""
    on.append(f"metrics {admin}/metrics{token}, probes {admin}/healthz and /readyz")
    return "listening: " + "; ".join(on)


def serve(config: Config) -> int:
    """Run until a signal; returns the exit status."""
    redis_url = config.redis.url
    embedded: RedisServer | None = None
    if redis_url is None and not (config.redis.sentinels or config.redis.cluster_nodes):
        data_dir = Path(config.server.data_dir)
        embedded = RedisServer(data_dir=data_dir, persistent=True)
        embedded.start()
        redis_url = embedded.url
        log.info(
            "no Redis URL configured: started an embedded redis-server (%s) at %s, data in %s",
            embedded.executable,
            mask_credentials(redis_url),
            data_dir,
        )
    try:
        _run(run_gateway(config, redis_url or ""))
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _run(main: object) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]
