-- Set an agent's status; only a connected, available agent is in the available set. A status
-- the agent sets clears the offers-missed count and records why (empty: the agent's choice).
-- KEYS[1] status: status (hash)
-- KEYS[2] available: available agents (set)
-- KEYS[3] node: agent -> node (hash)
-- KEYS[4] status_reason: status reason (hash)
-- KEYS[5] missed: offers missed in a row (hash)
-- KEYS[6] load: load (hash)
-- KEYS[7] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[8] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[9] agent_index: the agent index (zset, lex)
-- ARGV[1] agent: the agent
-- ARGV[2] new_status: status
-- ARGV[3] reason: reason ('' = none)
-- Returns 1 when the agent is now available for offers, else 0.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[5], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[4], ARGV[1])
end
local ix = {available = KEYS[2], load = KEYS[6], last = KEYS[7], info = KEYS[8], index = KEYS[9]}
if ARGV[2] == 'available' and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  index_agent(ix, ARGV[1])
  return 1
end
redis.call('SREM', KEYS[2], ARGV[1])
index_agent(ix, ARGV[1])
return 0
