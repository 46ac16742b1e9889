"""Redis keys of the presence package. Every key carries the ``{tenant}`` hash tag so that a
Lua script touching agents and conversations stays inside one cluster slot.

Per-agent facts live in per-tenant hashes (field = agent id, or ``agent|channel``) rather
than per-agent keys, so that routing scripts can declare every key they touch in KEYS.
"""

from __future__ import annotations


class PresenceKeys:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.prefix = f"zt:{{{tenant}}}:"
        p = self.prefix
        self.status = p + "agent:status"  # hash agent -> chosen status
        self.available = p + "agent:available"  # set of connected agents whose status is available
        self.node = p + "agent:node"  # hash agent -> node id holding the socket
        self.connection = p + "agent:conn"  # hash agent -> connection id (for replacement)
        self.disconnected_at = p + "agent:disconnected_at"  # hash agent -> ms
        self.skills = p + "agent:skills"  # hash agent -> JSON {skill: level}
        self.capacity = p + "agent:capacity"  # hash "agent|channel" -> max open conversations
        self.load = p + "agent:load"  # hash "agent|channel" -> open + offered conversations
        # hash agent -> ms of the last assignment; "agent|offers" -> JSON {offer id: ms offered}
        self.last_assigned = p + "agent:last_assigned"
        self.nodes = p + "nodes"  # zset node id -> last heartbeat ms
        self.auto_accept = (
            p + "agent:auto_accept"
        )  # set of agents whose offers are accepted for them
        self.missed = p + "agent:missed"  # hash agent -> offers timed out in a row
        self.status_reason = p + "agent:status_reason"  # hash agent -> why the status was set
        # The agent index (presence/lua/_index.lua): zset of "strategy|pool|channel|rank"
        # members, and hash agent -> JSON {p: pools, c: {channel: capacity}, t: total cap,
        # m: the agent's members}, field "" -> JSON {p: the tenant's pools, s: strategies}.
        self.agent_index = p + "agent:index"
        self.agent_index_info = p + "agent:index_info"
        # Written by the router (router/keys.py); the index's pools come from it.
        self.queue_config = p + "queue_cfg"

    def node_channel(self, node_id: str) -> str:
        """The pub/sub channel on which one gateway process receives cross-node deliveries."""
        return f"{self.prefix}node:{node_id}"


def agent_channel_field(agent: str, channel: str) -> str:
    return f"{agent}|{channel}"
