"""Routing decisions: who is offered a waiting conversation (dispatch), an offer given back
(declined, or timed out), and an offer taken (accept). Each is one Lua call, so that any
number of gateway processes may decide for the same queues without offering a conversation
twice or an agent past their capacity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from router.core import RouterCore, ms, refuse
from router.reads import text
from router.results import Accepted, OfferMade, Released, RoutingError
from router.route import Route, decode_route


class RoutingDecisions(RouterCore):
    async def dispatch(
        self, now_ms: int, open_queues: Sequence[str] | None = None
    ) -> list[OfferMade]:
        """Offer (or, with auto-accept, assign) waiting conversations of the open queues."""
        s = self.settings
        queues = self._queues(open_queues)
        if not queues["queue_names"]:
            return []
        flat = await self._scripts.run(
            "dispatch",
            now_ms=now_ms,
            offer_timeout_ms=ms(s.offer_timeout_s),
            batch=s.dispatch_batch,
            scan_limit=s.scan_limit,
            decline_cooldown_ms=ms(s.decline_cooldown_s),
            **queues,
        )
        return [
            OfferMade(
                offer_id=text(flat[i]) or None,
                conversation_id=text(flat[i + 1]),
                agent=text(flat[i + 2]),
                node=text(flat[i + 3]) or None,
                queue=text(flat[i + 4]),
                enqueued_ms=int(float(flat[i + 5])),
                assigned=text(flat[i + 6]) == "assign",
            )
            for i in range(0, len(flat), 7)
        ]

    async def decline(self, offer_id: str, agent: str, now_ms: int) -> Released:
        flat = await self._release("decline", now_ms, offer_id, agent)
        if flat and text(flat[0]) == "!not_yours":
            raise RoutingError("not_yours", f"offer {offer_id} was made to another agent")
        if not flat:
            raise RoutingError("unknown_offer", f"no pending offer {offer_id}")
        return self._released(flat)[0]

    async def expire_offers(self, now_ms: int, limit: int = 100) -> list[Released]:
        return self._released(await self._release("expire", now_ms, limit, ""))

    async def _release(self, mode: str, now_ms: int, target: str | int, agent: str) -> list[Any]:
        return await self._scripts.run(
            "release",
            mode=mode,
            now_ms=now_ms,
            target=target,
            agent=agent,
            unused="",
            missed_before_away=self.settings.missed_offers_before_away,
            **self._queues(),
        )

    @staticmethod
    def _released(flat: list[Any]) -> list[Released]:
        return [
            Released(
                offer_id=text(flat[i]),
                conversation_id=text(flat[i + 1]),
                agent=text(flat[i + 2]),
                queue=text(flat[i + 3]),
                agent_set_away=bool(int(flat[i + 4])),
                offer_due_ms=int(flat[i + 5]),
            )
            for i in range(0, len(flat), 6)
        ]

    async def accept(self, offer_id: str, agent: str, now_ms: int) -> Accepted:
        reply = await self._scripts.run("accept", offer_id=offer_id, agent=agent, now_ms=now_ms)
        refuse(
            reply,
            gone=("unknown_offer", f"offer {offer_id} is no longer pending"),
            not_yours=("not_yours", f"offer {offer_id} was made to another agent"),
        )
        return self.accepted(text(reply[1]), decode_route(reply[2]), int(reply[3]))

    def accepted(self, conversation_id: str, route: Route, offer_due_ms: int = 0) -> Accepted:
        queue = self.queues.get(route.queue)
        sla = route.sla_s if route.sla_s is not None else queue.sla_s if queue else None
        return Accepted(
            conversation_id=conversation_id,
            queue=route.queue,
            channel=route.channel,
            enqueued_ms=route.enqueued_ms,
            sla_s=sla,
            leave_message=bool(route.leave_message),
            offer_due_ms=offer_due_ms,
        )
