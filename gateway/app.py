"""Wiring: the public app (agent socket, adapters' web apps) and the admin app, with every
client and background task owned by the app and started and stopped in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from aiohttp import web

from adapters.contract import Adapter
from adapters.webchat.limits import networks
from gateway.admin.site import build_admin_app
from gateway.agents.actions import AgentActions
from gateway.agents.sessions import AgentSessions
from gateway.agents.socket import agent_socket
from gateway.agents.welcome import fresh_welcome
from gateway.badrequests import client_faults, quiet_parse_errors
from gateway.config import Config, enabled_adapters
from gateway.console.site import add_console_routes
from gateway.events.run import webhook_deliveries
from gateway.flows.clock import Clock, wall_clock_ms
from gateway.flows.host import GatewayHost
from gateway.flows.switchboard import Switchboard
from gateway.guard.caps import ConnectionCaps
from gateway.guard.deadlines import Deadlines, GuardedSite
from gateway.housekeeping import beat, run_housekeeping
from gateway.masking import mask_credentials
from gateway.observability.buckets import sla_thresholds
from gateway.observability.instrument import instrument_scripts, request_timer
from gateway.observability.metrics import Metrics
from gateway.redis.bus import NodeBus
from gateway.redis.client import open_clients
from gateway.redis.failover import describe
from gateway.services import SERVICES, Services
from gateway.supervisors.site import (
    add_supervisor_routes,
    close_supervisor_sockets,
    supervisor_relay,
)
from presence.registry import Presence
from router.engine import Router
from router.ids import new_id

log = logging.getLogger(__name__)

REDIS_WAIT_S = 15.0
# An idle kept-alive connection is closed after this (aiohttp's own default is an hour,
# which lets idle connections pile up long after their requests were answered).
KEEPALIVE_S = 75.0
# The adapters' web apps as mounted ("/webchat/"), for the start-up line.
WEB_APPS = web.AppKey("web_apps", list[str])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{new_id('')[-6:]}"


def build_apps(
    config: Config,
    redis_url: str,
    adapter_classes: Mapping[str, type[Adapter]],
    clock: Clock = wall_clock_ms,
) -> tuple[web.Application, web.Application]:
    """The public app and the admin app. adapter_classes maps configured table names to their
    classes (see adapters.registry); clock is the flows' now (a test's simulated time)."""
    node_id = config.server.node_id or default_node_id()
    metrics = Metrics(sla_thresholds(config), config.routing.offer_timeout_s)
    host = GatewayHost(
        config.server.tenant,
        node_id,
        config.server.trusted_proxies,
        on_limited=lambda limit: metrics.limited.labels(limit).inc(),
    )
    adapters: dict[str, Adapter] = {
        name: adapter_classes[name](adapter_config, host)
        for name, adapter_config in enabled_adapters(config)
    }
    services = Services(
        config=config,
        node_id=node_id,
        redis_url=redis_url,
        metrics=metrics,
        host=host,
        adapters=adapters,
        clock=clock,
    )
    server = config.server
    caps = ConnectionCaps(
        server.max_connections,
        server.max_connections_per_address,
        networks(server.trusted_proxies),
        on_refused=lambda scope: metrics.connections_refused.labels(scope).inc(),
        on_count=metrics.connections_open.set,
    )
    app = web.Application(
        client_max_size=1024**2,
        middlewares=[caps.middleware(), request_timer(metrics, adapters), client_faults],
    )
    app[SERVICES] = services
    app.router.add_get("/agent/ws", agent_socket)
    add_supervisor_routes(app)
    add_console_routes(app)
    web_apps: list[str] = []
    for name, adapter in adapters.items():
        sub_app = adapter.web_app()
        if sub_app is not None:
            # Before the sub-app, whose prefix would take "/webchat" and answer 404.
            app.router.add_get(f"/{name}", _redirect(f"/{name}/"))
            app.add_subapp(f"/{name}/", sub_app)
            web_apps.append(f"/{name}/")
    app[WEB_APPS] = web_apps
    app.router.add_get("/", _redirect("/console/"))
    app.cleanup_ctx.append(quiet_parse_errors)
    app.cleanup_ctx.append(_core)
    app.cleanup_ctx.append(_background_tasks)
    app.cleanup_ctx.append(webhook_deliveries)
    app.cleanup_ctx.append(supervisor_relay)
    app.on_shutdown.append(_close_sockets)
    return app, build_admin_app(app)


def public_runner(app: web.Application, shutdown_timeout_s: float) -> web.AppRunner:
    return web.AppRunner(
        app, shutdown_timeout=shutdown_timeout_s, access_log=None, keepalive_timeout=KEEPALIVE_S
    )


def tcp_cap(max_connections: int) -> int:
    """Open TCP connections allowed: a quarter more than the requests and sockets
    max_connections counts, so that those are refused first with their clear answer (close
    1013, 503) and this catches what they cannot see: idle and half-sent connections."""
    return max_connections + max_connections // 4


def public_site(runner: web.AppRunner, host: str, port: int) -> GuardedSite:
    """The public port's listener, with the slow-client deadlines and the cap on open
    connections of [server]."""
    s = runner.app[SERVICES]
    deadlines = Deadlines(
        s.config.server.header_timeout_s,
        s.config.server.body_timeout_s,
        on_slow=lambda phase: s.metrics.slow_clients.labels(phase).inc(),
        max_connections=tcp_cap(s.config.server.max_connections),
        on_full=s.metrics.connections_refused.labels("total").inc,
    )
    return GuardedSite(runner, host, port, deadlines)


def _redirect(location: str) -> Handler:
    """A path without its slash, or the bare site, to the page people meant."""

    async def redirect(request: web.Request) -> web.StreamResponse:
        query = f"?{request.query_string}" if request.query_string else ""
        raise web.HTTPFound(location + query)

    return redirect


async def _wait_for_redis(redis: object, url: str) -> None:
    deadline = asyncio.get_running_loop().time() + REDIS_WAIT_S
    while True:
        try:
            await redis.ping()  # type: ignore[attr-defined]
            return
        except Exception as exc:
            if asyncio.get_running_loop().time() > deadline:
                where, why = mask_credentials(url), mask_credentials(str(exc))
                raise RuntimeError(f"Redis at {where} is not reachable: {why}") from exc
            await asyncio.sleep(0.2)


async def _core(app: web.Application) -> AsyncIterator[None]:
    s = app[SERVICES]
    config = s.config
    clients = open_clients(s.redis_url or None, config.redis, config.server.tenant)
    s.redis, s.subscriber, s.failover = clients.redis, clients.subscriber, clients.watch
    try:
        await _wait_for_redis(s.redis, describe(config.redis, s.redis_url))
        s.router = Router(
            s.redis,
            config.server.tenant,
            config.queues,
            config.routing,
            config.routing.default_queue,
            config.core.events,
        )
        s.presence = Presence(s.redis, config.server.tenant)
        instrument_scripts(s.metrics, s.router, s.presence)
        s.bus = NodeBus(s.redis, s.subscriber, s.presence.keys, s.node_id)
        if clients.watch is not None:  # the new master's channel, not the old one's
            clients.watch.on_switch(lambda _: s.bus.resubscribe())
        s.sessions = AgentSessions(s.bus)
        s.switchboard = Switchboard(
            config, s.router, s.presence, s.sessions, s.metrics, s.adapters, clock=s.clock
        )
        s.actions = AgentActions(s.switchboard)
        s.sessions.welcomer = lambda session: fresh_welcome(s, session.agent, session.holdings)
        s.host.bind(s.redis, s.switchboard, s.bus)
        await s.router.sync_queues()
        await s.presence.sync_agents(config.agents)
        for adapter in s.adapters.values():
            await adapter.start()
        yield
    finally:
        await _close_adapters(s)
        with contextlib.suppress(Exception):
            await s.presence.leave(s.node_id)
        await clients.aclose()


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    """Every background task of the process starts and is cancelled here."""
    s = app[SERVICES]
    tasks = [
        asyncio.create_task(s.bus.run(), name="node-bus"),
        asyncio.create_task(s.switchboard.run_dispatcher(), name="dispatcher"),
        asyncio.create_task(run_housekeeping(s), name="housekeeping"),
    ]
    if s.failover is not None:
        tasks.append(asyncio.create_task(s.failover.run(), name="sentinel-watch"))
    tasks += [
        asyncio.create_task(adapter.run(), name=f"adapter-{name}")
        for name, adapter in s.adapters.items()
        if adapter.has_background_task
    ]
    await asyncio.wait_for(s.bus.subscribed.wait(), timeout=REDIS_WAIT_S)
    await beat(s)
    s.started = True
    log.info("gateway node %s ready", s.node_id)
    try:
        yield
    finally:
        s.started = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _close_adapters(s: Services) -> None:
    adapters, s.adapters = dict(s.adapters), {}
    for name, adapter in adapters.items():
        try:
            await adapter.aclose()
        except Exception:
            log.exception("adapter %s failed to close", name)


async def _close_sockets(app: web.Application) -> None:
    """Shutdown: stop taking work and tell every socket the gateway is going away."""
    s = app[SERVICES]
    s.started = False
    await s.sessions.close_all("gateway going away")
    await close_supervisor_sockets(s)
    await _close_adapters(s)
