-- Place a waiting conversation afresh, where classification now puts it (a review edited from
-- five stars to one): its queue, priority, skills, grade and SLA become the new placement's,
-- and it keeps its original enqueue time, so it does not lose its place in time. Only a
-- conversation in state 'queued' moves; an offered or assigned one is left as it is (the
-- agent already has it) and its state is returned.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] route: conversation route (hash)
-- KEYS[3] timers: conversation timers (zset, "kind|conversation")
-- KEYS[4] queue_config: queue config (hash, JSON)
-- KEYS[5..] queue_keys: the queues, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation
-- ARGV[2] queue: the new queue
-- ARGV[3] priority: the new priority
-- ARGV[4] skills: the new skill requirement, JSON ('' = the queue's own)
-- ARGV[5] grade: grade ('' = none)
-- ARGV[6] sla_s: the grade's SLA in seconds ('' = the queue's)
-- ARGV[7] basis: the placement's basis, what classification decided ('' = unknown): a
--   conversation already placed on the same basis is left alone, keeping its escalation
--   steps and ageing
-- ARGV[8] now_ms: now, ms
-- ARGV[9..] queue_names: the queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'moved', from queue, to queue} | {'unchanged', queue} | {'offered', queue} |
--         {'assigned', queue} | {'closed'} | {'unknown_queue'}
local conv = ARGV[1]
local target = ARGV[2]
local basis = ARGV[7]
local now = tonumber(ARGV[8])
local queues = queue_map(5, 9)
local state = redis.call('HGET', KEYS[1], conv)
local route = get_route(KEYS[2], conv)
if not state or state == 'closed' or not route then return {'closed'} end
if state ~= 'queued' then return {state, route.q} end
if not queues[target] then return {'unknown_queue'} end
if basis ~= '' and route.pb == basis then return {'unchanged', route.q} end

local cache = {}
local from = route.q
local before = queue_config(KEYS[4], cache, from)
local after = queue_config(KEYS[4], cache, target)
if queues[from] then redis.call('ZREM', queues[from], conv) end
route.q = target
route.p = tonumber(ARGV[3])
route.s = ARGV[4] ~= '' and cjson.decode(ARGV[4]) or nil
route.g = ARGV[5] ~= '' and ARGV[5] or nil
route.sla = ARGV[6] ~= '' and tonumber(ARGV[6]) or nil
route.pb = basis ~= '' and basis or nil
-- Escalation's changes belonged to the old placement: the new queue's steps redo them.
route.es = nil
route.x = nil
route.ag = nil
restart_waiting_timers(KEYS[3], conv, route, before, after, now, {catch_up = true})
put_route(KEYS[2], conv, route)
requeue(KEYS[1], queues, conv, route)
emit_event('conversation_queued', conv, now, {
  queue = target, priority = route.p, reason = 'reclassified', from_queue = from,
})
return {'moved', from, target}
