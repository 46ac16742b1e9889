-- An agent's socket is up on a node: record where, and restore their status.
-- KEYS[1] node: agent -> node (hash)
-- KEYS[2] connection: agent -> connection id (hash)
-- KEYS[3] status: status (hash)
-- KEYS[4] available: available agents (set)
-- KEYS[5] disconnected_at: agent disconnected-at ms (hash)
-- KEYS[6] load: load (hash)
-- KEYS[7] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[8] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[9] agent_index: the agent index (zset, lex)
-- ARGV[1] agent: the agent
-- ARGV[2] node_id: node id
-- ARGV[3] connection_id: connection id
-- ARGV[4] initial_status: status for a fresh login
-- Returns {previous node, previous connection id, status now}
local agent = ARGV[1]
local ix = {available = KEYS[4], load = KEYS[6], last = KEYS[7], info = KEYS[8], index = KEYS[9]}
local previous_node = redis.call('HGET', KEYS[1], agent) or ''
local previous_connection = redis.call('HGET', KEYS[2], agent) or ''
redis.call('HSET', KEYS[1], agent, ARGV[2])
redis.call('HSET', KEYS[2], agent, ARGV[3])
redis.call('HDEL', KEYS[5], agent)
local status = redis.call('HGET', KEYS[3], agent)
if not status or status == 'offline' then
  status = ARGV[4]
  redis.call('HSET', KEYS[3], agent, status)
end
if status == 'available' then
  redis.call('SADD', KEYS[4], agent)
else
  redis.call('SREM', KEYS[4], agent)
end
index_agent(ix, agent)
return {previous_node, previous_connection, status}
