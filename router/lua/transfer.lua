-- Transfer a conversation to a queue, or to an agent (who is then offered it first), with a
-- note for the next agent. It keeps its original enqueue time, its priority and its history,
-- and gets the target queue's waiting timers timed from that enqueue time: escalation from the
-- first step, ageing from its next step, the maximum wait unless it came already.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] agent_of: conversation -> agent (hash)
-- KEYS[3] route: conversation route (hash)
-- KEYS[4] assignments: assignments (zset, lex)
-- KEYS[5] load: load (hash)
-- KEYS[6] declined: decliners (hash, JSON)
-- KEYS[7] timers: conversation timers (zset)
-- KEYS[8] first_reply: first reply ms per conversation (hash)
-- KEYS[9] queue_config: queue config (hash, JSON)
-- KEYS[10] notes: the conversation's internal notes (list)
-- KEYS[11] available: available agents (set)
-- KEYS[12] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[13] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[14] agent_index: the agent index (zset, lex)
-- KEYS[15..] queue_keys: the queues, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation
-- ARGV[2] by_agent: the agent transferring it ('' = an administrator)
-- ARGV[3] to_queue: target queue ('' = its own queue)
-- ARGV[4] to_agent: target agent ('' = none)
-- ARGV[5] now_ms: now, ms
-- ARGV[6] offer_timeout_ms: how long the target agent is waited for, ms
-- ARGV[7] note: a note for the next agent
-- ARGV[8] note_record: the note as kept with the conversation's notes ('' = none)
-- ARGV[9..] queue_names: the queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', previous holder} | {'gone'} | {'not_yours'} | {'busy'} | {'unknown_queue'}
local conv = ARGV[1]
local now = tonumber(ARGV[5])
local queues = queue_map(15, 9)
local state = redis.call('HGET', KEYS[1], conv)
if not state or state == 'closed' then return {'gone'} end
local holder = redis.call('HGET', KEYS[2], conv) or ''
if ARGV[2] ~= '' and holder ~= ARGV[2] then return {'not_yours'} end
if state == 'offered' then return {'busy'} end
local route = get_route(KEYS[3], conv)
local from_queue = route.q
local target_queue = ARGV[3] ~= '' and ARGV[3] or route.q
if not queues[target_queue] then return {'unknown_queue'} end

if state == 'assigned' then
  add_load(KEYS[5], holder, route.c, -1)
  index_agent({available = KEYS[11], load = KEYS[5], last = KEYS[12], info = KEYS[13],
    index = KEYS[14]}, holder)
  redis.call('ZREM', KEYS[4], holder .. '\0' .. conv)
  redis.call('HDEL', KEYS[2], conv)
  redis.call('ZREM', KEYS[7], 'idle|' .. conv, 'idle2|' .. conv)
elseif queues[route.q] then
  redis.call('ZREM', queues[route.q], conv)
end

local cache = {}
local before = queue_config(KEYS[9], cache, route.q)
local after = queue_config(KEYS[9], cache, target_queue)
local raw_declined = redis.call('HGET', KEYS[6], conv)
local declined = raw_declined and cjson.decode(raw_declined) or {}
if holder ~= '' then declined[holder] = now end
route.q = target_queue
route.s = nil
route.x = nil
route.es = nil
route.pk = nil
route.tn = ARGV[7] ~= '' and ARGV[7] or nil
route.tf = holder ~= '' and holder or nil
-- Every transfer, by who held it then ('' = it was waiting), for the reports.
route.tx = route.tx or {}
route.tx[#route.tx + 1] = holder
if ARGV[4] ~= '' then
  route.pa = ARGV[4]
  route.pu = now + tonumber(ARGV[6])
  declined[ARGV[4]] = nil
else
  route.pa = nil
  route.pu = nil
end
redis.call('HSET', KEYS[6], conv, cjson.encode(declined))
-- The next agent has not answered yet: should they drop, it goes back to the queue.
redis.call('HDEL', KEYS[8], conv)
-- A transfer is a new placement: the target queue's escalation starts over from the first step.
restart_waiting_timers(KEYS[7], conv, route, before, after, now, {held = state == 'assigned'})
put_route(KEYS[3], conv, route)
-- The note outlives the next transfer, which replaces route.tn: it joins the notes.
if ARGV[8] ~= '' then redis.call('RPUSH', KEYS[10], ARGV[8]) end
requeue(KEYS[1], queues, conv, route)
emit_event('conversation_transferred', conv, now, {
  from_agent = or_null(holder), by_agent = or_null(ARGV[2]), from_queue = from_queue,
  to_queue = target_queue, to_agent = or_null(ARGV[4]), note = or_null(ARGV[7]),
})
return {'ok', holder}
