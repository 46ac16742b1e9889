"""Periodic work every gateway process does: fire due offer timers, mark dead processes'
agents as disconnected, send agents offline after their grace period, and heartbeat.
The timers live in Redis, so whichever process sweeps first fires them."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.flows.positions import tell_positions
from gateway.outages import Outage
from gateway.services import Services
from gateway.tasks import stop_if_cancelled

log = logging.getLogger(__name__)

# A safety net: conversations enqueued by a process that died before routing them.
DISPATCH_EVERY_S = 1.0
PURGE_EVERY_S = 60.0
# Closes whose process died before following them up (the CSAT question, the QA pick).
FOLLOWUP_EVERY_S = 5.0


async def run_housekeeping(services: Services) -> None:
    config = services.config
    interval = config.routing.sweep_interval_s
    heartbeat_every = config.presence.heartbeat_interval_s
    position_every = config.routing.position_interval_s
    last_heartbeat = last_dispatch = last_positions = last_purge = last_followup = 0.0
    retention_s = config.routing.closed_retention_s
    board = services.switchboard
    outage = Outage(log, "housekeeping (offer expiry, timers, heartbeats)")
    while True:
        try:
            await board.expire_offers()
            await board.fire_timers()
            now = time.monotonic()
            if now - last_heartbeat >= heartbeat_every:
                last_heartbeat = now
                await beat(services)
            if position_every > 0 and now - last_positions >= position_every:
                last_positions = now
                await tell_positions(board, position_every)
            if retention_s > 0 and now - last_purge >= PURGE_EVERY_S:
                last_purge = now
                await services.router.purge_closed(board.clock(), retention_s)
            if now - last_followup >= FOLLOWUP_EVERY_S:
                last_followup = now
                await board.aftercare.sweep()
            if now - last_dispatch >= DISPATCH_EVERY_S:
                last_dispatch = now
                # Nothing changed: the sweep must not wake supervisors' wallboards.
                board.request_dispatch(changed=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stop_if_cancelled()
            await asyncio.sleep(max(interval, outage.failed(exc)))
            continue
        outage.succeeded()
        stop_if_cancelled()
        await asyncio.sleep(interval)


async def beat(services: Services) -> None:
    board = services.switchboard
    now_ms = board.clock()
    await services.presence.heartbeat(services.node_id, now_ms)
    ttl_ms = int(services.config.presence.node_ttl_s * 1000)
    reaped = await services.presence.reap_dead_nodes(now_ms, ttl_ms)
    if reaped:
        log.warning("agents of a dead gateway process are now disconnected: %s", reaped)
    await board.expire_agents()
