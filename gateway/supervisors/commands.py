"""Each client frame of the supervisor socket to what carries it out (search.py, watch.py,
actions.py, the QA queue's gateway/admin/quality.py), and every failure to one error frame:
nothing a lead sends ends the socket."""

from __future__ import annotations

import logging

from adapters import retryable
from adapters.retryable import redis_unavailable
from gateway.admin import quality
from gateway.admin.errors import ApiError
from gateway.services import Services
from gateway.supervisors.actions import act
from gateway.supervisors.protocol import (
    ClientFrame,
    CloseAction,
    Done,
    Error,
    Ping,
    Pong,
    QaList,
    QaResults,
    QaScore,
    Search,
    SearchResults,
    SetAgentStatus,
    TakeOver,
    TransferAction,
    Unwatch,
    Watch,
)
from gateway.supervisors.scope import Refused
from gateway.supervisors.search import search
from gateway.supervisors.session import SupervisorSession
from gateway.supervisors.watch import unwatch, watch
from router.results import RoutingError

log = logging.getLogger(__name__)

# The QA list a lead's socket shows: the first this many, oldest pick first.
QA_LIST_LIMIT = 100
ACTIONS = {
    TransferAction: "transfer",
    CloseAction: "close",
    TakeOver: "take_over",
    SetAgentStatus: "set_agent_status",
}
# The field a routing refusal is about, as the admin API names it (gateway/admin/errors.py).
ROUTING_FIELD = {
    "bad_status": "status",
    "unknown_queue": "to_queue",
    "unknown_agent": "to_agent",
    "agent_unavailable": "to_agent",
    "unknown_conversation": "conversation_id",
}


async def handle(services: Services, session: SupervisorSession, frame: ClientFrame) -> None:
    request_id = getattr(frame, "request_id", None)
    try:
        await _carry_out(services, session, frame)
    except Refused as exc:
        error = Error(code=exc.code, detail=exc.detail, field=exc.field, request_id=request_id)
        session.push(error)
    except ApiError as exc:  # the QA queue's refusals, as the admin API words them
        session.push(
            Error(code=exc.code, detail=exc.detail, field=exc.field, request_id=request_id)
        )
    except RoutingError as exc:
        field = ROUTING_FIELD.get(exc.code)
        if isinstance(frame, TakeOver) and field == "to_agent":
            field = "agent"
        session.push(Error(code=exc.code, detail=exc.detail, field=field, request_id=request_id))
    except Exception as exc:
        if redis_unavailable(exc):  # Redis loading or away a moment: send it again soon
            session.push(Error(code=retryable.CODE, detail=retryable.DETAIL, request_id=request_id))
            return
        log.exception("supervisor %s: %s frame failed", session.lead.id, type(frame).__name__)
        session.push(
            Error(code="internal", detail="the gateway failed; try again", request_id=request_id)
        )


async def _carry_out(services: Services, session: SupervisorSession, frame: ClientFrame) -> None:
    match frame:
        case Search():
            found = await search(services, session.scope, frame)
            session.push(SearchResults(request_id=frame.request_id, conversations=found))
        case Watch(conversation_id=conversation_id):
            await watch(services, session, conversation_id)
        case Unwatch(conversation_id=conversation_id):
            unwatch(services, session, conversation_id)
        case Ping():
            session.push(Pong())
        case QaList():
            seen = set(session.scope.queues)
            scored = frame.status == "scored"
            found, _ = await quality.list_qa(services, seen, scored, QA_LIST_LIMIT, (0, ""))
            scorecard = quality.scorecard_views(services)
            session.push(
                QaResults(
                    request_id=frame.request_id,
                    status=frame.status,
                    scorecard=scorecard,
                    conversations=found,
                )
            )
        case QaScore():
            seen = set(session.scope.queues)
            conv, items, note = frame.conversation_id, frame.items, frame.note
            await quality.score(services, seen, conv, items, note, session.lead.id)
            session.push(Done(request_id=frame.request_id, action="qa_score"))
        case TransferAction() | CloseAction() | TakeOver() | SetAgentStatus():
            await act(services, session.scope, frame)
            session.push(Done(request_id=frame.request_id, action=ACTIONS[type(frame)]))
