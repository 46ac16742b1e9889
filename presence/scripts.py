"""The contracts of the presence package's Lua scripts (presence/lua/*.lua): the KEYS and
ARGV each takes, in order. Presence calls them by these names; each script's header names
the same entries in the same order."""

from __future__ import annotations

from presence.lua import LuaContract

# The keys index_agent (lua/_index.lua) needs besides the available set.
INDEX = ("load", "last_assigned", "agent_index_info", "agent_index")

CONNECT = LuaContract(
    "connect",
    keys=("node", "connection", "status", "available", "disconnected_at", *INDEX),
    args=("agent", "node_id", "connection_id", "initial_status"),
)
DISCONNECT = LuaContract(
    "disconnect",
    keys=("node", "connection", "available", "disconnected_at", *INDEX),
    args=("agent", "connection_id", "now_ms"),
)
SET_STATUS = LuaContract(
    "set_status",
    keys=("status", "available", "node", "status_reason", "missed", *INDEX),
    args=("agent", "new_status", "reason"),
)
REAP_NODES = LuaContract(
    "reap_nodes",
    keys=("nodes", "node", "connection", "available", "disconnected_at", *INDEX),
    args=("now_ms", "node_ttl_ms"),
)

INDEX_REBUILD = LuaContract(
    "index_rebuild",
    keys=("skills", "capacity", "queue_config", "available", *INDEX),
)

CONTRACTS = (CONNECT, DISCONNECT, SET_STATUS, REAP_NODES, INDEX_REBUILD)
