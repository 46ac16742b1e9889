-- Store an agent's reply once per client_msg_id, only in a conversation the agent holds.
-- KEYS[1] conversation -> agent (hash)   KEYS[2] reply-once marker for this client_msg_id
-- KEYS[3] messages of the conversation (list)   KEYS[4] first reply ms per conversation (hash)
-- KEYS[5] conversation route (hash)   KEYS[6] queue config (hash)
-- KEYS[7] conversation timers (zset)
-- ARGV[1] conversation   ARGV[2] agent   ARGV[3] message id   ARGV[4] message (msgpack)
-- ARGV[5] marker TTL ms   ARGV[6] now ms
-- Returns {'ok', message id, 1 if first reply} | {'duplicate', message id} | {'not_yours'}
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return {'not_yours'} end
local existing = redis.call('GET', KEYS[2])
if existing then return {'duplicate', existing} end
local now = tonumber(ARGV[6])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
local first = redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[6])
local route = get_route(KEYS[5], ARGV[1])
restart_idle(KEYS[7], queue_config(KEYS[6], {}, route.q), ARGV[1], now)
return {'ok', ARGV[3], first}
