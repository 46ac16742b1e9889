-- Gateway processes whose heartbeat is older than the TTL are dead: their agents count as
-- disconnected from now, which starts their grace period.
-- KEYS[1] nodes: nodes (zset, heartbeat ms)
-- KEYS[2] node: agent -> node (hash)
-- KEYS[3] connection: agent -> connection id (hash)
-- KEYS[4] available: available agents (set)
-- KEYS[5] disconnected_at: agent disconnected-at ms (hash)
-- KEYS[6] load: load (hash)
-- KEYS[7] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[8] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[9] agent_index: the agent index (zset, lex)
-- ARGV[1] now_ms: now, ms
-- ARGV[2] node_ttl_ms: node TTL ms
-- Returns the dead nodes' agents.
local now = tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if #dead == 0 then return {} end
local is_dead = {}
for _, node in ipairs(dead) do
  is_dead[node] = true
  redis.call('ZREM', KEYS[1], node)
end
local ix = {available = KEYS[4], load = KEYS[6], last = KEYS[7], info = KEYS[8], index = KEYS[9]}
local reaped = {}
local held = redis.call('HGETALL', KEYS[2])
for i = 1, #held, 2 do
  local agent, node = held[i], held[i + 1]
  if is_dead[node] then
    redis.call('HDEL', KEYS[2], agent)
    redis.call('HDEL', KEYS[3], agent)
    redis.call('SREM', KEYS[4], agent)
    redis.call('HSET', KEYS[5], agent, now)
    index_agent(ix, agent)
    reaped[#reaped + 1] = agent
  end
end
return reaped
