-- An agent accepts an offer: the conversation becomes theirs (capacity was reserved at offer).
-- KEYS[1] offers (hash)   KEYS[2] offer timers (zset)   KEYS[3] conversation -> offer (hash)
-- KEYS[4] conversation state   KEYS[5] conversation -> agent (hash)
-- KEYS[6] assignments (zset, lex "agent\0conversation")   KEYS[7] decliners (hash)
-- KEYS[8] conversation route (hash)   KEYS[9] offers missed in a row (hash)
-- KEYS[10] conversation timers (zset)   KEYS[11] queue config (hash)
-- KEYS[12] customer -> last agent (hash)   KEYS[13] agent last assigned and pending offers (hash)
-- ARGV[1] offer id   ARGV[2] agent   ARGV[3] now ms
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
local route = get_route(KEYS[8], o.c)
route.pa = nil
route.pu = nil
put_route(KEYS[8], o.c, route)
redis.call('HSET', KEYS[12], route.kl or route.k, o.a .. '|' .. now)
restart_idle(KEYS[10], queue_config(KEYS[11], {}, route.q), o.c, now)
return {'ok', o.c, cjson.encode(route), o.d or 0}
