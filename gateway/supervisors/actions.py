"""What a lead does, through the code paths the admin API and agents use: transfer and close
through AgentActions (the switchboard's closing flow for a close), a status through the admin
API's own call, and take_over as a transfer to the lead's own agent account. Each is checked
against the lead's scope first; the answer is ``done`` or an error frame."""

from __future__ import annotations

import logging

from adapters.model import Conversation
from gateway.admin.agents import STATUS_SET_BY_SUPERVISOR
from gateway.services import Services
from gateway.supervisors.protocol import (
    Action,
    CloseAction,
    SetAgentStatus,
    TakeOver,
    TransferAction,
)
from gateway.supervisors.scope import Refused, Scope

log = logging.getLogger(__name__)


async def in_scope(services: Services, scope: Scope, conversation_id: str) -> Conversation:
    """The lead's open conversation, or the refusal saying why not."""
    conversation = await services.router.conversation(conversation_id)
    if conversation is None:
        raise Refused(
            "unknown_conversation", f"no conversation {conversation_id!r}", "conversation_id"
        )
    route = await services.router.route(conversation_id)
    if not scope.sees_queue(route.queue if route else conversation.queue):
        raise Refused(
            "out_of_scope",
            f"conversation {conversation_id} is not in your queues",
            "conversation_id",
        )
    if conversation.state == "closed":
        raise Refused("closed", f"conversation {conversation_id} is closed", "conversation_id")
    return conversation


async def _transfer(
    services: Services, scope: Scope, frame: TransferAction | TakeOver, to_agent: str | None
) -> None:
    to_queue = frame.to_queue if isinstance(frame, TransferAction) else None
    if to_agent is None and to_queue is None:
        raise Refused("bad_frame", "name to_agent or to_queue", "to_agent")
    if to_agent is not None and to_agent not in services.switchboard.agents:
        raise Refused("unknown_agent", f"no agent {to_agent!r}", "to_agent")
    if to_agent is not None and not scope.sees_agent(to_agent) and to_agent != scope.lead.agent:
        raise Refused("out_of_scope", f"agent {to_agent} is not in your queues", "to_agent")
    if to_queue is not None and not scope.sees_queue(to_queue):
        field = "to_queue"
        if to_queue not in services.switchboard.placer.queues:
            raise Refused("unknown_queue", f"no queue {to_queue!r}", field)
        raise Refused("out_of_scope", f"queue {to_queue} is not one of yours", field)
    conversation = await in_scope(services, scope, frame.conversation_id)
    if to_agent is not None and conversation.agent == to_agent:
        # Routing would take it from them and offer it back: nothing a lead means.
        field = "conversation_id" if isinstance(frame, TakeOver) else "to_agent"
        raise Refused("already_assigned", f"{to_agent} holds {conversation.id} already", field)
    note = frame.note if isinstance(frame, TransferAction) else None
    await services.actions.transfer(None, frame.conversation_id, to_agent, to_queue, note)


async def act(services: Services, scope: Scope, frame: Action) -> None:
    lead = scope.lead
    match frame:
        case TransferAction():
            await _transfer(services, scope, frame, frame.to_agent)
        case TakeOver():
            if lead.agent is None:
                raise Refused("no_agent_account", "your supervisor entry names no agent", "agent")
            await _transfer(services, scope, frame, lead.agent)
        case CloseAction():
            await in_scope(services, scope, frame.conversation_id)
            await services.actions.close(None, frame.conversation_id)
        case SetAgentStatus():
            if frame.agent_id not in services.switchboard.agents:
                raise Refused("unknown_agent", f"no agent {frame.agent_id!r}", "agent_id")
            if not scope.sees_agent(frame.agent_id):
                raise Refused(
                    "out_of_scope", f"agent {frame.agent_id} is not in your queues", "agent_id"
                )
            reason = frame.reason or STATUS_SET_BY_SUPERVISOR
            await services.actions.set_status(frame.agent_id, frame.status, reason)
    log.info(
        "supervisor %s: %s %s",
        lead.id,
        type(frame).__struct_config__.tag,
        getattr(frame, "conversation_id", None) or getattr(frame, "agent_id", ""),
        extra={"supervisor": lead.id},
    )
