-- An agent accepts an offer: the conversation becomes theirs (capacity was reserved at offer).
-- KEYS[1] offers: offers (hash)
-- KEYS[2] offer_timers: offer timers (zset)
-- KEYS[3] offer_of: conversation -> offer (hash)
-- KEYS[4] state: conversation state (hash)
-- KEYS[5] agent_of: conversation -> agent (hash)
-- KEYS[6] assignments: assignments (zset, lex "agent\0conversation")
-- KEYS[7] declined: decliners (hash)
-- KEYS[8] route: conversation route (hash)
-- KEYS[9] missed: offers missed in a row (hash)
-- KEYS[10] timers: conversation timers (zset)
-- KEYS[11] queue_config: queue config (hash)
-- KEYS[12] last_agent: customer -> last agent (hash)
-- KEYS[13] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[14] available: available agents (set)
-- KEYS[15] load: load (hash)
-- KEYS[16] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[17] agent_index: the agent index (zset, lex)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] offer_id: the offer
-- ARGV[2] agent: the agent accepting it
-- ARGV[3] now_ms: now, ms
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', conversation, route JSON, the offer's due ms} | {'gone'} | {'not_yours'}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'gone'} end
local o = cjson.decode(raw)
if o.a ~= ARGV[2] then return {'not_yours'} end
local now = tonumber(ARGV[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], o.c)
redis.call('HSET', KEYS[4], o.c, 'assigned')
redis.call('HSET', KEYS[5], o.c, o.a)
redis.call('ZADD', KEYS[6], 0, o.a .. '\0' .. o.c)
redis.call('HDEL', KEYS[7], o.c)
redis.call('HDEL', KEYS[9], o.a)
forget_offer(KEYS[13], o.a, ARGV[1])
note_assignment(KEYS[13], o.a, now)
index_agent({available = KEYS[14], load = KEYS[15], last = KEYS[13], info = KEYS[16],
  index = KEYS[17]}, o.a)
local route = get_route(KEYS[8], o.c)
route.pa = nil
route.pu = nil
note_first_assignment(route, o.a, now)
put_route(KEYS[8], o.c, route)
redis.call('HSET', KEYS[12], route.kl or route.k, o.a .. '|' .. now)
restart_idle(KEYS[10], queue_config(KEYS[11], {}, route.q), o.c, now)
emit_event('conversation_assigned', o.c, now, {
  agent = o.a, queue = route.q, offer_id = ARGV[1], how = 'accepted',
})
return {'ok', o.c, cjson.encode(route), o.d or 0}
