-- Store an agent's reply once per client_msg_id, only in a conversation the agent holds.
-- KEYS[1] agent_of: conversation -> agent (hash)
-- KEYS[2] reply_once: reply-once marker for this client_msg_id
-- KEYS[3] messages: messages of the conversation (list)
-- KEYS[4] first_reply: first reply ms per conversation (hash)
-- KEYS[5] route: conversation route (hash)
-- KEYS[6] queue_config: queue config (hash)
-- KEYS[7] timers: conversation timers (zset)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation
-- ARGV[2] agent: the agent replying
-- ARGV[3] message_id: message id
-- ARGV[4] message: message (msgpack)
-- ARGV[5] marker_ttl_ms: marker TTL ms
-- ARGV[6] now_ms: now, ms
-- ARGV[7] message_json: the message as its event carries it (JSON)
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
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
-- The conversation's first response, for the reports: kept across transfers (the
-- first_reply hash is not), so a later agent's first reply does not replace it.
local changed = false
if not route.fr then
  route.fr = now
  route.fb = ARGV[2]
  changed = true
end
-- A complaint's first response: its first-response reminder and deadline are off (a later
-- agent's first reply, after a transfer, is not the complaint's first response).
if first == 1 and route.dl and not route.dl.fm then
  route.dl.fm = now
  changed = true
  redis.call('ZREM', KEYS[7], 'first_remind|' .. ARGV[1], 'first_due|' .. ARGV[1])
end
if changed then put_route(KEYS[5], ARGV[1], route) end
emit_event('message_out', ARGV[1], now,
  '{"agent":' .. cjson.encode(ARGV[2]) .. ',"first_reply":' .. (first == 1 and 'true' or 'false')
  .. ',"message":' .. ARGV[7] .. '}')
return {'ok', ARGV[3], first}
