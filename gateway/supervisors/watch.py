"""Watching a conversation: its summary and recent messages once, then, live, every message
stored in it (the customer's and those sent to the customer) and its close, as the change
tap hears of them in this process. Messages that arrive while the first read is under way
are held and sent after ``watching``, less those the read already had, so a watcher sees
each message once and in order."""

from __future__ import annotations

from gateway.services import Services
from gateway.supervisors.protocol import Unwatched, Watching
from gateway.supervisors.scope import Refused
from gateway.supervisors.search import summary_of
from gateway.supervisors.session import SupervisorSession


async def watch(services: Services, session: SupervisorSession, conversation_id: str) -> None:
    tap = services.switchboard.tap
    if conversation_id in session.watched:
        tap.unwatch(conversation_id, session)
    session.hold(conversation_id)
    tap.watch(conversation_id, session)
    try:
        conversation = await services.router.conversation(conversation_id)
        if conversation is None:
            raise Refused(
                "unknown_conversation", f"no conversation {conversation_id!r}", "conversation_id"
            )
        route = await services.router.route(conversation_id)
        queue = route.queue if route else conversation.queue
        if not session.scope.sees_queue(queue):
            raise Refused(
                "out_of_scope",
                f"conversation {conversation_id} is not in your queues",
                "conversation_id",
            )
    except BaseException:
        tap.unwatch(conversation_id, session)
        session.release(conversation_id, None)
        raise
    notes = [conversation.transfer_note] if conversation.transfer_note else []
    session.push(
        Watching(
            conversation_id=conversation_id,
            conversation=summary_of(conversation, route),
            messages=conversation.messages,
            notes=notes,
        )
    )
    session.release(conversation_id, {m.id for m in conversation.messages})


def unwatch(services: Services, session: SupervisorSession, conversation_id: str) -> None:
    services.switchboard.tap.unwatch(conversation_id, session)
    session.watched.discard(conversation_id)
    session.push(Unwatched(conversation_id=conversation_id))
