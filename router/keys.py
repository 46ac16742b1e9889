"""Redis keys of the router. All carry the ``{tenant}`` hash tag (see presence.keys).

Routing state that a script may touch for a conversation it picks at run time (state, route,
offer, assigned agent, decliners) lives in per-tenant hashes keyed by conversation id, because
a script must receive every key it touches through KEYS.
"""

from __future__ import annotations

from collections.abc import Iterable


class RouterKeys:
    def __init__(self, tenant: str, queues: Iterable[str]) -> None:
        self.tenant = tenant
        self.prefix = f"zt:{{{tenant}}}:"
        p = self.prefix
        self.queue_names = list(queues)
        self.queue_keys = [self.queue(name) for name in self.queue_names]
        self.queue_config = p + "queue_cfg"  # hash queue -> JSON {skills, strategy}
        self.state = p + "conv:state"  # hash conv -> queued | offered | assigned | closed
        self.route = p + "conv:route"  # hash conv -> JSON {q, c, p, e, k}
        self.meta = p + "conv:meta"  # hash conv -> msgpack ConversationMeta
        self.offer_of = p + "conv:offer"  # hash conv -> pending offer id
        self.agent_of = p + "conv:agent"  # hash conv -> agent holding it
        self.declined = p + "conv:declined"  # hash conv -> JSON {agent: ms}
        self.offer_seq = p + "conv:offer_seq"  # hash conv -> last offer number
        self.customer_open = p + "customer:open"  # hash "channel|account|customer" -> conv
        self.offers = p + "offers"  # hash offer -> JSON {c, a, d}
        self.offer_timers = p + "timers:offer"  # zset offer -> due ms
        self.assignments = p + "assignments"  # zset (all scores 0) "agent\0conv", lex ranges
        self.first_reply = p + "conv:first_reply"  # hash conv -> ms of the first agent reply
        self.timers = p + "timers:conv"  # zset "kind|conv" -> due ms (escalation, inactivity...)
        self.last_agent = p + "customer:last_agent"  # hash customer field -> "agent|ms"
        self.last_closed = p + "customer:last_closed"  # hash customer field -> "conv|ms"
        self.closed = p + "closed"  # zset conv -> close ms, for retention
        self.round_robin = p + "queue_rr"  # hash queue -> the agent chosen last
        self.positions = p + "queue_positions"  # hash conv -> position last told the customer
        self.positions_lock = p + "lock:positions"  # one process tells positions per interval
        # The close (the closed zset) up to which every conversation has been followed up.
        self.followup_mark = p + "followup:mark"
        self.qa_pending = p + "qa:pending"  # zset conv -> ms it was picked for QA
        self.qa_scored = p + "qa:scored"  # zset conv -> ms it was scored
        self.events = p + "events"  # stream of lifecycle events (router/events.py)

    def queue(self, name: str) -> str:
        return f"{self.prefix}queue:{name}"

    def accepts(self, queue: str) -> str:
        """List of recent accept times (ms, newest first), for estimated waits."""
        return f"{self.prefix}accepts:{queue}"

    def sla_answers(self, queue: str) -> str:
        """Zset "conv|1" (met) or "conv|0" (breached) -> answer ms, the last SLA_WINDOW_MS."""
        return f"{self.prefix}sla:{queue}"

    def messages(self, conversation_id: str) -> str:
        return f"{self.prefix}msgs:{conversation_id}"

    def notes(self, conversation_id: str) -> str:
        """List of the conversation's internal notes (msgpack, oldest first)."""
        return f"{self.prefix}notes:{conversation_id}"

    def history(self, customer: str) -> str:
        """List of a customer's closed conversations (msgpack, newest first), by the
        customer field without its thread: a customer's threads are one customer."""
        return f"{self.prefix}history:{customer}"

    def rating(self, conversation_id: str) -> str:
        """Hash: what followed the conversation's close (the CSAT question, the answer);
        its existence says the close was followed up."""
        return f"{self.prefix}csat:{conversation_id}"

    def csat_ask(self, customer: str) -> str:
        """String: the conversation the customer (a customer field) was last asked to rate,
        expiring with the CSAT window."""
        return f"{self.prefix}csat_ask:{customer}"

    def qa(self, conversation_id: str) -> str:
        """Hash: the conversation's QA record (why it was picked, its scores)."""
        return f"{self.prefix}qa:{conversation_id}"

    def dedupe(self, channel: str, account: str, external_id: str) -> str:
        return f"{self.prefix}seen:{channel}:{account}:{external_id}"

    def reply_once(self, agent: str, client_msg_id: str) -> str:
        return f"{self.prefix}reply:{agent}:{client_msg_id}"


def customer_field(channel: str, account: str, customer_id: str, thread: str | None = None) -> str:
    field = f"{channel}|{account}|{customer_id}"
    return f"{field}#{thread}" if thread else field
