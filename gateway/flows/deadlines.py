"""What a graded complaint's reminder and missed deadline (超时提醒) do beyond the script that
fired them (timers.lua, which already marked the route and applied raise_priority or a move
between queues): the frame to the agent holding the conversation, the frame to the leads of
its queue (in every process, through the change tap and its relay), the counters, and the one
action a script cannot take, moving a conversation an agent holds to another queue (a
transfer, as a lead's would be). The timers fire once across processes, so each of these
happens once; a process killed before the transfer leaves the timer leased, and the next
sweep asks again (``complaint_transfer``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from adapters.model import Conversation
from gateway.agents.protocol import Closed, DeadlineFrame
from gateway.flows.clock import Clock
from gateway.flows.dispatcher import Dispatcher
from gateway.flows.outbound import ToAgents
from gateway.observability.metrics import Metrics
from gateway.supervisors.protocol import DeadlineAlert
from gateway.supervisors.tap import ChangeTap
from router.engine import Router
from router.results import RoutingError, TimerEvent

log = logging.getLogger(__name__)

KINDS = ("complaint_reminder", "complaint_deadline", "complaint_transfer")


@dataclass(kw_only=True)
class DeadlineAlerts:
    router: Router
    metrics: Metrics
    to_agents: ToAgents
    dispatcher: Dispatcher
    tap: ChangeTap
    clock: Clock

    async def follow_up(self, event: TimerEvent, conversation: Conversation) -> None:
        name, _, rest = event.detail.partition("|")
        if event.kind == "complaint_transfer":
            await self._transfer(conversation, name, rest)
            return
        due = next((d for d in conversation.deadlines if d.kind == name), None)
        if due is None:
            return
        grade = conversation.grade or "none"
        if event.kind == "complaint_reminder":
            self.metrics.complaint_reminders.labels(conversation.queue, grade, name).inc()
            await self._tell(conversation, name, "reminder", due.due_at, None)
            return
        action = "move_to_queue" if rest in ("transfer", "later") else rest
        self.metrics.complaint_deadlines_missed.labels(
            conversation.queue, grade, name, action
        ).inc()
        log.warning(
            "complaint %s missed its %s deadline: %s",
            conversation.id,
            name,
            action,
            extra={"conversation": conversation.id},
        )
        await self._tell(conversation, name, "missed", due.due_at, action)
        if rest == "transfer":
            route = await self.router.route(conversation.id)
            queue = route.deadlines.queue if route and route.deadlines else None
            if queue:
                await self._transfer(conversation, name, queue)
        elif rest in ("raise_priority", "move_to_queue"):
            self.dispatcher.request()  # it stands elsewhere in line now
        self.tap.changed()

    async def _tell(
        self,
        conversation: Conversation,
        name: str,
        stage: str,
        due_at: datetime,
        action: str | None,
    ) -> None:
        holder = conversation.agent if conversation.state == "assigned" else None
        if holder is not None:
            frame = DeadlineFrame(
                conversation_id=conversation.id,
                deadline=name,  # type: ignore[arg-type]
                stage=stage,
                due_at=due_at,
                action=action,
            )
            await self.to_agents.send(holder, frame)
        self.tap.deadline(
            DeadlineAlert(
                conversation_id=conversation.id,
                queue=conversation.queue,
                grade=conversation.grade,
                agent=holder,
                deadline=name,
                stage=stage,
                due_at=due_at,
                action=action,
            )
        )

    async def _transfer(self, conversation: Conversation, name: str, queue: str) -> None:
        """Take a held complaint from its agent to the grade's queue, as a lead's transfer."""
        note = f"{name.replace('_', ' ')} deadline missed: moved here by its complaint grade"
        try:
            previous = await self.router.transfer(
                conversation.id, None, self.clock(), to_queue=queue, note=note
            )
        except RoutingError as exc:
            # An offer out (busy) or closed meanwhile: the leased timer asks again, or not.
            log.info("complaint %s not moved yet: %s", conversation.id, exc.detail)
            return
        if previous:
            await self.to_agents.send(
                previous, Closed(conversation_id=conversation.id, reason="transferred")
            )
        self.dispatcher.request()
        self.tap.changed()
