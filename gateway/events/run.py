"""The webhooks' part of a gateway process's life: one HTTP client session (the app's, closed
at shutdown) and one delivery loop per ``[[webhooks]]`` entry, started after the Redis
client exists and cancelled before it closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.events.delivery import WebhookWorker
from gateway.events.metrics import WebhookMetrics
from gateway.events.store import WebhookStore
from gateway.services import SERVICES


async def webhook_deliveries(app: web.Application) -> AsyncIterator[None]:
    s = app[SERVICES]
    hooks = [hook for hook in s.config.core.webhooks if hook.enabled]
    if not hooks:
        yield
        return
    metrics = WebhookMetrics(s.metrics.registry, [hook.name for hook in hooks])
    tenant = s.config.server.tenant
    async with aiohttp.ClientSession() as session:
        workers = [
            WebhookWorker(
                hook, WebhookStore(s.redis, tenant, hook.name, s.node_id), session, metrics
            )
            for hook in hooks
        ]
        tasks = [
            asyncio.create_task(worker.run(), name=f"webhook-{worker.hook.name}")
            for worker in workers
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
