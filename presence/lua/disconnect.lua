-- An agent's socket closed. Only the connection that is still current may unregister, so a
-- replaced connection closing late cannot undo its replacement. The grace timer starts.
-- KEYS[1] node: agent -> node (hash)
-- KEYS[2] connection: agent -> connection id (hash)
-- KEYS[3] available: available agents (set)
-- KEYS[4] disconnected_at: agent disconnected-at ms (hash)
-- KEYS[5] load: load (hash)
-- KEYS[6] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[7] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[8] agent_index: the agent index (zset, lex)
-- ARGV[1] agent: the agent
-- ARGV[2] connection_id: connection id
-- ARGV[3] now_ms: now, ms
-- Returns 1 when unregistered, 0 when a newer connection holds the agent.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
local ix = {available = KEYS[3], load = KEYS[5], last = KEYS[6], info = KEYS[7], index = KEYS[8]}
index_agent(ix, ARGV[1])
return 1
