"""The router: every routing decision is one Lua call on Redis, so any number of gateway
processes can route the same queues without double offers or capacity overruns.

``Router`` is one object, composed of parts that each own one kind of work, so that a reader
finds each where its name says: the ingest path (router/ingest.py), routing decisions
(router/decisions.py), conversation changes (router/changes.py), upkeep
(router/maintenance.py), what is kept beside routing (router/records.py: internal notes, customers'
earlier conversations), what follows a close (router/aftercare.py: CSAT, the QA queue) and
reads (router/reads.py), over what they share (router/core.py).
What the scripts know of a queue is worked out in router/queues.py."""

from __future__ import annotations

import json

from router.aftercare import Aftercare
from router.changes import ConversationChanges
from router.decisions import RoutingDecisions
from router.ingest import Ingestion
from router.maintenance import LEASE_MS, Maintenance
from router.queues import queue_rules, queue_score, waiting_timers
from router.records import ConversationRecords

# Names this module has always offered, wherever they now live.
__all__ = ["LEASE_MS", "Router", "queue_rules", "queue_score", "waiting_timers"]


class Router(
    Ingestion, RoutingDecisions, ConversationChanges, Maintenance, ConversationRecords, Aftercare
):
    async def sync_queues(self) -> None:
        """Store every queue's rules where the scripts read them."""
        configs = {name: json.dumps(queue_rules(q)) for name, q in self.queues.items()}
        await self.redis.hset(self.keys.queue_config, mapping=configs)
