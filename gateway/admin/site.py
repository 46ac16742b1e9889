"""The admin site on its own port and address (``[server] admin_host``, loopback unless
asked), kept off the internet: /healthz and /readyz need no token (probes), /metrics needs
``[admin] metrics_token`` when one is configured, and the API is mounted under /api (api.py)
behind the admin token."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.admin.api import add_api_routes
from gateway.admin.auth import bearer
from gateway.admin.gauges import refresh_gauges
from gateway.admin.keys import MAIN_APP, app_services, request_services
from gateway.badrequests import client_faults
from gateway.masking import mask_credentials
from gateway.observability.instrument import ErrorCounter
from gateway.redis.failover import probe_writes

log = logging.getLogger(__name__)


def metrics_refusal(request: web.Request, token: str | None) -> web.Response | None:
    """401 unless the request carries the metrics token (when one is configured); plain
    text, as a scraper shows it in its target's error."""
    if not token:
        return None
    presented = bearer(request.headers.get("Authorization", "")) or ""
    if hmac.compare_digest(presented.encode(), token.encode()):
        return None
    return web.Response(
        status=401,
        text="send Authorization: Bearer <[admin] metrics_token>\n",
        headers={"WWW-Authenticate": 'Bearer realm="zhongtai-metrics"'},
    )


async def metrics_handler(request: web.Request) -> web.Response:
    services = request_services(request)
    refused = metrics_refusal(request, services.config.core.admin.metrics_token)
    if refused is not None:
        return refused
    try:
        await refresh_gauges(services)
    except Exception as exc:
        # Serve the process's own counters even when Redis is away; the gauges keep their
        # last values and /readyz reports the outage.
        log.warning("metrics: could not read Redis: %s", mask_credentials(str(exc)))
    body = generate_latest(services.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request_services(request)
    problems = []
    if not services.started:
        problems.append("starting")
    else:
        timeout_s = services.config.redis.socket_timeout_s
        try:
            # A hung Redis must make the probe answer 503 in time, not hang the probe; and a
            # write, since a demoted master still answers PING.
            probe = probe_writes(services.redis, services.config.server.tenant, services.node_id)
            await asyncio.wait_for(probe, timeout=timeout_s)
        except TimeoutError:
            problems.append(f"redis: no answer within {timeout_s} s")
        except Exception as exc:
            problems.append(f"redis: {mask_credentials(str(exc))}")
        if not services.bus.subscribed.is_set():
            problems.append("node subscription down")
        for name, adapter in services.adapters.items():
            try:
                if not await adapter.ready():
                    problems.append(f"adapter {name} not ready")
            except Exception as exc:
                problems.append(f"adapter {name}: {mask_credentials(str(exc))}")
    if problems:
        return web.json_response({"status": "unavailable", "problems": problems}, status=503)
    return web.json_response({"status": "ready", "node": services.node_id})


def build_admin_app(main_app: web.Application) -> web.Application:
    admin = web.Application(middlewares=[client_faults])
    admin[MAIN_APP] = main_app
    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz)
    admin.router.add_get("/readyz", readyz)
    add_api_routes(admin)
    admin.cleanup_ctx.append(_count_logged_errors)
    return admin


async def _count_logged_errors(admin: web.Application) -> AsyncIterator[None]:
    """zhongtai_errors_logged_total: a handler on the root logger while the app runs."""
    counter = ErrorCounter(app_services(admin).metrics)
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield
    finally:
        root.removeHandler(counter)
