-- Store one inbound message: dedupe, find or open the customer's conversation, append, enqueue.
-- KEYS[1] dedupe: dedupe marker for this external id
-- KEYS[2] customer_open: customer -> open conversation (hash)
-- KEYS[3] state: conversation state (hash)
-- KEYS[4] route: conversation route (hash)
-- KEYS[5] meta: conversation meta (hash)
-- KEYS[6] messages: messages of the conversation (list)
-- KEYS[7] queue: the queue a new conversation joins
-- KEYS[8] agent_of: conversation -> agent (hash)
-- KEYS[9] node: agent -> node (hash)
-- KEYS[10] timers: conversation timers (zset)
-- KEYS[11] queue_config: queue config (hash)
-- KEYS[12] last_closed: customer -> last closed "conv|ms" (hash)
-- KEYS[13] first_reply: first reply ms per conversation (hash)
-- KEYS[14..] queue_keys: every queue, in the order of queue_names (so that a follow-up
--   message finds the queue its conversation waits in)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] field: customer field
-- ARGV[2] expected: the open conversation the caller saw ('' = none)
-- ARGV[3] new_conversation: id for a new conversation
-- ARGV[4] message: message (msgpack)
-- ARGV[5] message_id: message id
-- ARGV[6] new_meta: meta for a new conversation (msgpack)
-- ARGV[7] new_route: route JSON for a new conversation
-- ARGV[8] score: queue score for a new conversation
-- ARGV[9] dedupe_ttl_ms: dedupe TTL ms
-- ARGV[10] now_ms: now, ms
-- ARGV[11] reopen: the closed conversation to reopen instead of opening one ('' = none)
-- ARGV[12] reopen_within_ms: the channel's reopen window, ms (0 = the channel never reopens)
-- ARGV[13] message_json: the message as its events carry it (JSON)
-- ARGV[14] conversation_json: a new conversation's created event data (JSON)
-- ARGV[15] timer_item_count: how many timer items follow
-- ARGV[16..] timer_items: a new conversation's timers: kind, due ms, kind, due ms...
-- ARGV[16+timer_item_count..] queue_names: every queue's name
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'duplicate', conv, message id} | {'retry', current conv} |
--         {'accepted', conv, created 0|1|2 (2: reopened), state, agent, node, position or -1,
--          the conversation's queue}
local seen = redis.call('GET', KEYS[1])
if seen then
  local sep = string.find(seen, '|', 1, true)
  return {'duplicate', string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)}
end
local current = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if current ~= ARGV[2] then
  -- The caller built KEYS[6] for another conversation; it retries with the right keys.
  return {'retry', current}
end
local now = tonumber(ARGV[10])
local conv = current
local created = 0
if conv == '' then
  conv, created = ARGV[3], 1
  if ARGV[11] ~= '' then
    -- Decided here, against the close as stored, not by the caller's earlier read: a channel
    -- without a window (0) never reopens, not even what closed in this very millisecond.
    local closed = redis.call('HGET', KEYS[12], ARGV[1]) or ''
    local window = tonumber(ARGV[12])
    local closed_ms = tonumber(string.sub(closed, #ARGV[11] + 2))
    if string.sub(closed, 1, #ARGV[11] + 1) ~= ARGV[11] .. '|' or window <= 0
        or not closed_ms or now - closed_ms > window
        or redis.call('HGET', KEYS[3], ARGV[11]) ~= 'closed' then
      return {'retry', ''}
    end
    conv, created = ARGV[11], 2
    redis.call('HDEL', KEYS[12], ARGV[1])
    redis.call('HDEL', KEYS[13], conv)
  else
    redis.call('HSET', KEYS[5], conv, ARGV[6])
  end
  redis.call('HSET', KEYS[2], ARGV[1], conv)
  redis.call('HSET', KEYS[4], conv, ARGV[7])
  redis.call('HSET', KEYS[3], conv, 'queued')
  redis.call('ZADD', KEYS[7], ARGV[8], conv)
  for i = 16, 15 + tonumber(ARGV[15]), 2 do
    redis.call('ZADD', KEYS[10], ARGV[i + 1], ARGV[i] .. '|' .. conv)
  end
  local placed = get_route(KEYS[4], conv)
  if created == 1 then emit_event('conversation_created', conv, now, ARGV[14]) end
  emit_event('conversation_queued', conv, now, {
    queue = placed.q, priority = placed.p, reason = created == 1 and 'new' or 'reopened',
  })
end
emit_event('message_in', conv, now, '{"message":' .. ARGV[13] .. '}')
redis.call('RPUSH', KEYS[6], ARGV[4])
redis.call('SET', KEYS[1], conv .. '|' .. ARGV[5], 'PX', ARGV[9])
local state = redis.call('HGET', KEYS[3], conv)
local agent, node, position = '', '', -1
if state == 'assigned' then
  agent = redis.call('HGET', KEYS[8], conv) or ''
  node = redis.call('HGET', KEYS[9], agent) or ''
  local route = get_route(KEYS[4], conv)
  restart_idle(KEYS[10], queue_config(KEYS[11], {}, route.q), conv, now)
elseif state == 'queued' then
  local queues = queue_map(14, 16 + tonumber(ARGV[15]))
  local key = queues[get_route(KEYS[4], conv).q]
  position = key and redis.call('ZRANK', key, conv) or -1
end
return {'accepted', conv, created, state, agent, node, position, get_route(KEYS[4], conv).q}
