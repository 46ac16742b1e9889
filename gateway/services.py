"""What a running gateway owns, in one object stored on the aiohttp app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.contract import Adapter
from gateway.agents.actions import AgentActions
from gateway.agents.sessions import AgentSessions
from gateway.config import Config
from gateway.flows.clock import Clock, wall_clock_ms
from gateway.flows.host import GatewayHost
from gateway.flows.switchboard import Switchboard
from gateway.observability.metrics import Metrics
from gateway.redis.bus import NodeBus
from gateway.redis.failover import SwitchWatch
from presence.registry import Presence
from router.engine import Router


@dataclass
class Services:
    config: Config
    node_id: str
    redis_url: str
    metrics: Metrics
    host: GatewayHost
    adapters: dict[str, Adapter]
    redis: Any = None
    subscriber: Any = None
    failover: SwitchWatch | None = None  # on Sentinel: the watch for +switch-master
    # The flows' now (a test passes one it moves by hand, tests/harness.py).
    clock: Clock = wall_clock_ms
    router: Router = field(init=False)
    presence: Presence = field(init=False)
    bus: NodeBus = field(init=False)
    sessions: AgentSessions = field(init=False)
    switchboard: Switchboard = field(init=False)
    actions: AgentActions = field(init=False)
    started: bool = False
    # The supervisor sockets open on this process, closed at shutdown (gateway/supervisors).
    supervisor_sockets: set[web.WebSocketResponse] = field(default_factory=set)


SERVICES = web.AppKey("services", Services)
