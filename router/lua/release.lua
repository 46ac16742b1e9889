-- Take back pending offers: an agent's decline, or every offer whose timer is due.
-- The conversation returns to its queue with its original enqueue time; the agent's
-- reserved capacity is freed, the offer no longer counts as their last assignment, and they
-- are remembered as a decliner. An agent who lets missed_before_away offers in a row time
-- out is set away, with the reason 'missed_offers'.
-- KEYS[1] offers: offers (hash)
-- KEYS[2] offer_timers: offer timers (zset)
-- KEYS[3] offer_of: conversation -> offer (hash)
-- KEYS[4] state: conversation state (hash)
-- KEYS[5] route: conversation route (hash)
-- KEYS[6] load: load (hash)
-- KEYS[7] declined: conversation decliners (hash, JSON)
-- KEYS[8] missed: offers missed in a row (hash)
-- KEYS[9] status: agent status (hash)
-- KEYS[10] available: available agents (set)
-- KEYS[11] status_reason: status reason (hash)
-- KEYS[12] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[13] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[14] agent_index: the agent index (zset, lex)
-- KEYS[15..] queue_keys: the queues, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] mode: 'decline' | 'expire'
-- ARGV[2] now_ms: now, ms
-- ARGV[3] target: decline: the offer id; expire: most offers to release
-- ARGV[4] agent: decline: the declining agent; expire: ''
-- ARGV[5] unused: ''
-- ARGV[6] missed_before_away: missed offers before an agent is set away (0 = never)
-- ARGV[7..] queue_names: the queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns a flat list, six items per released offer: offer id, conversation, agent, queue,
-- 1 if the agent was set away else 0, the offer's due ms; or {'!not_yours'} when the agent
-- declines an offer made to someone else.
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[6])
local queues = queue_map(15, 7)
local k = {
  offers = KEYS[1], timers = KEYS[2], offer_of = KEYS[3], state = KEYS[4], route = KEYS[5],
  load = KEYS[6], declined = KEYS[7], last = KEYS[12],
  ix = {available = KEYS[10], load = KEYS[6], last = KEYS[12], info = KEYS[13], index = KEYS[14]},
}

local result = {}
local function collect(item, set_away)
  emit_event(ARGV[1] == 'decline' and 'offer_declined' or 'offer_timed_out', item[2], now, {
    agent = item[3], queue = item[4], offer_id = item[1], agent_set_away = set_away and true or false,
  })
  for i = 1, 4 do result[#result + 1] = item[i] end
  result[#result + 1] = set_away and 1 or 0
  result[#result + 1] = item[5]
end

if ARGV[1] == 'decline' then
  local item = release_offer(k, queues, ARGV[3], ARGV[4], now)
  if item == false then return {'!not_yours'} end
  if item then
    redis.call('HDEL', KEYS[8], ARGV[4])
    collect(item, false)
  end
  return result
end

local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, offer in ipairs(due) do
  local item = release_offer(k, queues, offer, '', now)
  if item then
    local agent = item[3]
    local missed = redis.call('HINCRBY', KEYS[8], agent, 1)
    local set_away = limit > 0 and missed >= limit and redis.call('HGET', KEYS[9], agent) == 'available'
    if set_away then
      redis.call('HSET', KEYS[9], agent, 'away')
      redis.call('HSET', KEYS[11], agent, 'missed_offers')
      redis.call('SREM', KEYS[10], agent)
      redis.call('HDEL', KEYS[8], agent)
      index_agent(k.ix, agent)
    end
    collect(item, set_away)
  else
    redis.call('ZREM', KEYS[2], offer)
  end
end
return result
