-- Agents gone for good (their socket gone for the grace period, or one agent a supervisor set
-- offline) go offline: their pending offers are taken back at once, and their assigned
-- conversations go back to the queue with their original enqueue time (docs/design.md,
-- invariant 7) and waiting timers again: the escalation steps not done yet, the next ageing
-- step and the maximum wait, unless it came already, all timed from that enqueue time (what
-- is due happens at the next sweeps). A conversation the agent has answered stays theirs when
-- its queue says on_agent_gone = "keep" (router/config.py); unanswered ones always go back.
-- KEYS[1] disconnected_at: agent disconnected-at ms (hash)
-- KEYS[2] status: agent status (hash)
-- KEYS[3] available: available agents (set)
-- KEYS[4] assignments: assignments (zset, lex)
-- KEYS[5] state: conversation state (hash)
-- KEYS[6] agent_of: conversation -> agent (hash)
-- KEYS[7] route: conversation route (hash)
-- KEYS[8] load: load (hash)
-- KEYS[9] first_reply: first reply ms per conversation (hash)
-- KEYS[10] offers: offers (hash)
-- KEYS[11] offer_timers: offer timers (zset)
-- KEYS[12] offer_of: conversation -> offer (hash)
-- KEYS[13] declined: decliners (hash)
-- KEYS[14] timers: conversation timers (zset)
-- KEYS[15] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[16] queue_config: queue config (hash, JSON)
-- KEYS[17] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[18] agent_index: the agent index (zset, lex)
-- KEYS[19..] queue_keys: the queues, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] now_ms: now, ms
-- ARGV[2] grace_ms: how long an agent's socket may be gone, ms
-- ARGV[3] agent: '' = every agent past the grace period; else this agent, gone now
-- ARGV[4..] queue_names: the queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns a flat list, three items per event: agent, conversation ('' when the agent went
-- offline with nothing to requeue), 'requeued' | 'revoked:<offer id>' | 'offline'.
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local queues = queue_map(19, 4)
local cache = {}
local k = {
  offers = KEYS[10], timers = KEYS[11], offer_of = KEYS[12], state = KEYS[5], route = KEYS[7],
  load = KEYS[8], declined = KEYS[13], last = KEYS[15],
  ix = {available = KEYS[3], load = KEYS[8], last = KEYS[15], info = KEYS[17], index = KEYS[18]},
}
local result = {}
local function emit(agent, conv, what)
  result[#result + 1] = agent
  result[#result + 1] = conv
  result[#result + 1] = what
end

local function stays(conv, cfg)
  return cfg.on_agent_gone == 'keep' and redis.call('HEXISTS', KEYS[9], conv) == 1
end

local function go(agent)
  redis.call('HDEL', KEYS[1], agent)
  redis.call('HSET', KEYS[2], agent, 'offline')
  redis.call('SREM', KEYS[3], agent)
  index_agent(k.ix, agent)
  emit(agent, '', 'offline')
  local offers = redis.call('HGETALL', KEYS[10])
  for j = 1, #offers, 2 do
    if cjson.decode(offers[j + 1]).a == agent then
      local item = release_offer(k, queues, offers[j], agent, now)
      if item then
        emit(agent, item[2], 'revoked:' .. offers[j])
        emit_event('offer_revoked', item[2], now, {
          agent = agent, queue = item[4], offer_id = offers[j], reason = 'agent_gone',
        })
      end
    end
  end
  local held = redis.call('ZRANGEBYLEX', KEYS[4], '[' .. agent .. '\0', '(' .. agent .. '\1')
  for _, member in ipairs(held) do
    local conv = string.sub(member, #agent + 2)
    local route = get_route(KEYS[7], conv)
    local cfg = queue_config(KEYS[16], cache, route.q)
    if not stays(conv, cfg) then
      redis.call('ZREM', KEYS[4], member)
      redis.call('HDEL', KEYS[6], conv)
      redis.call('ZREM', KEYS[14], 'idle|' .. conv, 'idle2|' .. conv)
      -- The next agent has not answered yet: should they go too, it comes back again.
      redis.call('HDEL', KEYS[9], conv)
      add_load(KEYS[8], agent, route.c, -1)
      -- The customer has waited all along: its queue's timers go on where they stand, with
      -- its priority and the escalation steps done.
      restart_waiting_timers(KEYS[14], conv, route, cfg, cfg, now, {held = true})
      put_route(KEYS[7], conv, route)
      requeue(KEYS[5], queues, conv, route)
      index_agent(k.ix, agent)
      emit(agent, conv, 'requeued')
      emit_event('conversation_queued', conv, now, {
        queue = route.q, priority = route.p, reason = 'agent_gone', agent = agent,
      })
    end
  end
end

if ARGV[3] ~= '' then
  go(ARGV[3])
  return result
end
local gone = redis.call('HGETALL', KEYS[1])
for i = 1, #gone, 2 do
  if now - tonumber(gone[i + 1]) >= grace then go(gone[i]) end
end
return result
