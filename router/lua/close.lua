-- Close a conversation in whatever state it is, freeing the capacity it held or reserved; a
-- pending offer no longer counts as the agent's last assignment.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] agent_of: conversation -> agent (hash)
-- KEYS[3] route: conversation route (hash)
-- KEYS[4] offer_of: conversation -> offer (hash)
-- KEYS[5] offers: offers (hash)
-- KEYS[6] offer_timers: offer timers (zset)
-- KEYS[7] assignments: assignments (zset, lex)
-- KEYS[8] load: load (hash)
-- KEYS[9] customer_open: customer -> open conversation (hash)
-- KEYS[10] declined: decliners (hash)
-- KEYS[11] timers: conversation timers (zset)
-- KEYS[12] last_closed: customer -> last closed (hash)
-- KEYS[13] closed: closed conversations (zset, close ms; for retention)
-- KEYS[14] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[15] available: available agents (set)
-- KEYS[16] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[17] agent_index: the agent index (zset, lex)
-- KEYS[18..] queue_keys: the queues, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation
-- ARGV[2] agent: the agent closing it ('' = an administrator or the system)
-- ARGV[3] now_ms: now, ms
-- ARGV[4] reason: why it closed (agent, supervisor, idle, max_wait, channel...)
-- ARGV[5] close_reason: the reason the agent gave ('' = none)
-- ARGV[6..] queue_names: the queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', previous state, agent who held it, agent it was offered to, offer id}
--       | {'gone'} | {'not_yours'}
local conv = ARGV[1]
local state = redis.call('HGET', KEYS[1], conv)
if not state or state == 'closed' then return {'gone'} end
local holder = redis.call('HGET', KEYS[2], conv) or ''
if ARGV[2] ~= '' and holder ~= ARGV[2] then return {'not_yours'} end
local route = get_route(KEYS[3], conv)
local offered_to, offer = '', ''
local ix = {available = KEYS[15], load = KEYS[8], last = KEYS[14], info = KEYS[16], index = KEYS[17]}
if state == 'assigned' then
  add_load(KEYS[8], holder, route.c, -1)
  index_agent(ix, holder)
  redis.call('ZREM', KEYS[7], holder .. '\0' .. conv)
  redis.call('HDEL', KEYS[2], conv)
elseif state == 'offered' then
  offer = redis.call('HGET', KEYS[4], conv) or ''
  local raw = redis.call('HGET', KEYS[5], offer)
  if raw then
    offered_to = cjson.decode(raw).a
    add_load(KEYS[8], offered_to, route.c, -1)
    forget_offer(KEYS[14], offered_to, offer)
    index_agent(ix, offered_to)
  end
  redis.call('HDEL', KEYS[5], offer)
  redis.call('ZREM', KEYS[6], offer)
  redis.call('HDEL', KEYS[4], conv)
else
  local queues = queue_map(18, 6)
  if queues[route.q] then redis.call('ZREM', queues[route.q], conv) end
end
redis.call('HSET', KEYS[1], conv, 'closed')
if holder ~= '' then
  route.ha = holder
  put_route(KEYS[3], conv, route)
end
redis.call('HDEL', KEYS[10], conv)
clear_timers(KEYS[11], conv)
if redis.call('HGET', KEYS[9], route.k) == conv then redis.call('HDEL', KEYS[9], route.k) end
redis.call('HSET', KEYS[12], route.k, conv .. '|' .. ARGV[3])
redis.call('ZADD', KEYS[13], ARGV[3], conv)
emit_event('conversation_closed', conv, tonumber(ARGV[3]), {
  reason = ARGV[4], close_reason = or_null(ARGV[5]), previous_state = state,
  agent = or_null(holder), offered_to = or_null(offered_to), queue = route.q,
})
return {'ok', state, holder, offered_to, offer}
