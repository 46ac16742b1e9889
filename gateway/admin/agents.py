"""/api/agents: each agent's presence, load and offers, and a supervisor setting an agent's
status."""

from __future__ import annotations

import logging
from typing import Annotated

import msgspec
from aiohttp import web

from gateway.admin.bodies import Body, decode_body
from gateway.admin.errors import ApiError, json_response, refuse_unknown_parameters
from gateway.admin.keys import request_services
from gateway.admin.snapshots import snapshot_agents
from gateway.admin.views import AgentsResponse, Ok, agent_view, agent_views
from gateway.config import AgentConfig
from gateway.services import Services

# Named as before the API was cut into modules, so that log configurations that pick out
# the supervisors' actions keep working.
log = logging.getLogger("gateway.admin.api")

STATUS_SET_BY_SUPERVISOR = "set_by_supervisor"


class StatusBody(Body):
    status: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


def known_agent(services: Services, agent_id: str) -> AgentConfig:
    agent = services.switchboard.agents.get(agent_id)
    if agent is None:
        raise ApiError(404, "unknown_agent", f"no agent {agent_id!r}")
    return agent


async def get_agents(request: web.Request) -> web.Response:
    refuse_unknown_parameters(request.query)
    services = request_services(request)
    snap = await snapshot_agents(services)
    return json_response(AgentsResponse(agents=agent_views(services, snap)))


async def get_agent(request: web.Request) -> web.Response:
    refuse_unknown_parameters(request.query)
    services = request_services(request)
    agent = known_agent(services, request.match_info["agent_id"])
    return json_response(agent_view(agent, await snapshot_agents(services, [agent])))


async def set_status(request: web.Request) -> web.Response:
    services = request_services(request)
    agent = known_agent(services, request.match_info["agent_id"])
    body = await decode_body(request, StatusBody)
    await services.actions.set_status(agent.id, body.status, STATUS_SET_BY_SUPERVISOR)
    log.info("supervisor set %s %s", agent.id, body.status, extra={"agent": agent.id})
    return json_response(Ok(ok=True, agent=agent.id, status=body.status))
