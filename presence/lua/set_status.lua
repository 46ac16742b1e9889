-- Set an agent's status; only a connected, available agent is in the available set. A status
-- the agent sets clears the offers-missed count and records why (empty: the agent's choice).
-- KEYS[1] status: status (hash)
-- KEYS[2] available: available agents (set)
-- KEYS[3] node: agent -> node (hash)
-- KEYS[4] status_reason: status reason (hash)
-- KEYS[5] missed: offers missed in a row (hash)
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
if ARGV[2] == 'available' and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[1])
  return 1
end
redis.call('SREM', KEYS[2], ARGV[1])
return 0
