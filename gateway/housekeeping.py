"""Periodic work every gateway process does: fire due offer timers, mark dead processes'
agents as disconnected, send agents offline after their grace period, and heartbeat.
The timers live in Redis, so whichever process sweeps first fires them."""

from __future__ import annotations

import logging
import time

from adapters.loops import Outage, repeat_forever
from gateway.flows.positions import tell_positions
from gateway.services import Services

log = logging.getLogger(__name__)

# A safety net: conversations enqueued by a process that died before routing them.
DISPATCH_EVERY_S = 1.0
PURGE_EVERY_S = 60.0
# Closes whose process died before following them up (the CSAT question, the QA pick).
FOLLOWUP_EVERY_S = 5.0


async def run_housekeeping(services: Services) -> None:
    chores = Chores(services)
    outage = Outage(log, "housekeeping (offer expiry, timers, heartbeats)")
    await repeat_forever(outage, chores.round, services.config.routing.sweep_interval_s)


class Chores:
    """One round of housekeeping every sweep interval; the slower chores when they are due."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.last_heartbeat = self.last_dispatch = self.last_positions = 0.0
        self.last_purge = self.last_followup = 0.0

    async def round(self) -> None:
        services, board = self.services, self.services.switchboard
        config = services.config
        await board.expire_offers()
        await board.fire_timers()
        now = time.monotonic()
        if now - self.last_heartbeat >= config.presence.heartbeat_interval_s:
            self.last_heartbeat = now
            await beat(services)
        position_every = config.routing.position_interval_s
        if position_every > 0 and now - self.last_positions >= position_every:
            self.last_positions = now
            await tell_positions(board, position_every)
        retention_s = config.routing.closed_retention_s
        if retention_s > 0 and now - self.last_purge >= PURGE_EVERY_S:
            self.last_purge = now
            await services.router.purge_closed(board.clock(), retention_s)
        if now - self.last_followup >= FOLLOWUP_EVERY_S:
            self.last_followup = now
            await board.aftercare.sweep()
        if now - self.last_dispatch >= DISPATCH_EVERY_S:
            self.last_dispatch = now
            # Nothing changed: the sweep must not wake supervisors' wallboards.
            board.request_dispatch(changed=False)


async def beat(services: Services) -> None:
    board = services.switchboard
    now_ms = board.clock()
    await services.presence.heartbeat(services.node_id, now_ms)
    ttl_ms = int(services.config.presence.node_ttl_s * 1000)
    reaped = await services.presence.reap_dead_nodes(now_ms, ttl_ms)
    if reaped:
        log.warning("agents of a dead gateway process are now disconnected: %s", reaped)
    await board.expire_agents()
