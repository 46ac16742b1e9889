-- Agents whose socket has been gone for the grace period go offline: their pending offers are
-- taken back at once, and their assigned conversations that no agent has answered yet go back
-- to the queue with their original enqueue time (docs/design.md, invariant 7) and waiting
-- timers again: the escalation steps not done yet, the next ageing step and the maximum wait,
-- unless it came already, all timed from that enqueue time (what is due happens at the next
-- sweeps). Answered ones stay.
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
-- KEYS[17..] queue_keys: the queues, in the order of queue_names
-- ARGV[1] now_ms: now, ms
-- ARGV[2] grace_ms: how long an agent's socket may be gone, ms
-- ARGV[3..] queue_names: the queues' names
-- Returns a flat list, three items per event: agent, conversation ('' when the agent went
-- offline with nothing to requeue), 'requeued' | 'revoked:<offer id>' | 'offline'.
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local queues = queue_map(17, 3)
local cache = {}
local k = {
  offers = KEYS[10], timers = KEYS[11], offer_of = KEYS[12], state = KEYS[5], route = KEYS[7],
  load = KEYS[8], declined = KEYS[13], last = KEYS[15],
}
local result = {}
local function emit(agent, conv, what)
  result[#result + 1] = agent
  result[#result + 1] = conv
  result[#result + 1] = what
end

local gone = redis.call('HGETALL', KEYS[1])
for i = 1, #gone, 2 do
  local agent, since = gone[i], tonumber(gone[i + 1])
  if now - since >= grace then
    redis.call('HDEL', KEYS[1], agent)
    redis.call('HSET', KEYS[2], agent, 'offline')
    redis.call('SREM', KEYS[3], agent)
    emit(agent, '', 'offline')
    local offers = redis.call('HGETALL', KEYS[10])
    for j = 1, #offers, 2 do
      if cjson.decode(offers[j + 1]).a == agent then
        local item = release_offer(k, queues, offers[j], agent, now)
        if item then emit(agent, item[2], 'revoked:' .. offers[j]) end
      end
    end
    local held = redis.call('ZRANGEBYLEX', KEYS[4], '[' .. agent .. '\0', '(' .. agent .. '\1')
    for _, member in ipairs(held) do
      local conv = string.sub(member, #agent + 2)
      if redis.call('HEXISTS', KEYS[9], conv) == 0 then
        local route = get_route(KEYS[7], conv)
        redis.call('ZREM', KEYS[4], member)
        redis.call('HDEL', KEYS[6], conv)
        redis.call('ZREM', KEYS[14], 'idle|' .. conv, 'idle2|' .. conv)
        add_load(KEYS[8], agent, route.c, -1)
        -- The customer has waited all along: its queue's timers go on where they stand, with
        -- its priority and the escalation steps done.
        local cfg = queue_config(KEYS[16], cache, route.q)
        restart_waiting_timers(KEYS[14], conv, route, cfg, cfg, now, {held = true})
        put_route(KEYS[7], conv, route)
        requeue(KEYS[5], queues, conv, route)
        emit(agent, conv, 'requeued')
      end
    end
  end
end
return result
