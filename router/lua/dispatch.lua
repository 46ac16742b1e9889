-- Offer waiting conversations to the best available agents, reserving capacity atomically.
-- KEYS[1] available: available agents (set)
-- KEYS[2] skills: agent skills (hash, JSON)
-- KEYS[3] capacity: capacity (hash)
-- KEYS[4] load: load (hash)
-- KEYS[5] last_assigned: last assignment ms and pending offers per agent (hash)
-- KEYS[6] node: agent -> node (hash)
-- KEYS[7] state: conversation state (hash)
-- KEYS[8] route: conversation route (hash)
-- KEYS[9] offer_of: conversation -> offer (hash)
-- KEYS[10] declined: conversation decliners (hash, JSON)
-- KEYS[11] offers: offers (hash)
-- KEYS[12] offer_timers: offer timers (zset)
-- KEYS[13] queue_config: queue config (hash, JSON)
-- KEYS[14] offer_seq: offer sequence per conversation (hash)
-- KEYS[15] auto_accept: auto-accepting agents (set)
-- KEYS[16] agent_of: conversation -> agent (hash)
-- KEYS[17] assignments: assignments (zset, lex)
-- KEYS[18] round_robin: round-robin position per queue (hash)
-- KEYS[19] timers: conversation timers (zset)
-- KEYS[20] last_agent: customer -> last agent (hash)
-- KEYS[21..] queue_keys: the queues open now, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] now_ms: now, ms
-- ARGV[2] offer_timeout_ms: how long an offer waits for the agent, ms
-- ARGV[3] batch: most decisions to make
-- ARGV[4] scan_limit: how many waiting conversations to look at per queue
-- ARGV[5] decline_cooldown_ms: how long a decliner is not offered the conversation again
--   while another agent with room and the skills has not declined it, ms
-- ARGV[6..] queue_names: the open queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns a flat list, seven items per decision: offer id ('' when assigned directly),
-- conversation, agent, agent's node, queue, enqueued ms, 'offer' | 'assign'.
local now = tonumber(ARGV[1])
local timeout = tonumber(ARGV[2])
local max_decisions = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local cooldown = tonumber(ARGV[5])

local agents = redis.call('SMEMBERS', KEYS[1])
if #agents == 0 then return {} end
table.sort(agents)
local available = {}
for _, agent in ipairs(agents) do available[agent] = true end

local candidates = {}
for k = 21, #KEYS - 1 do
  local items = redis.call('ZRANGE', KEYS[k], 0, scan - 1, 'WITHSCORES')
  for j = 1, #items, 2 do
    candidates[#candidates + 1] = {items[j], tonumber(items[j + 1]), KEYS[k]}
  end
end
if #candidates == 0 then return {} end
table.sort(candidates, function(a, b)
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[1] < b[1]
end)

local skills_cache, load_cache, capacity_cache, last_cache, queue_cache = {}, {}, {}, {}, {}
local auto_accept = {}
for _, agent in ipairs(redis.call('SMEMBERS', KEYS[15])) do auto_accept[agent] = true end

local function skills_of(agent)
  local s = skills_cache[agent]
  if s == nil then
    local raw = redis.call('HGET', KEYS[2], agent)
    s = raw and cjson.decode(raw) or {}
    skills_cache[agent] = s
  end
  return s
end

-- A missing capacity field is 0 for a channel (never offered) and unlimited for the total.
local function number_in(cache, key, field, missing)
  local v = cache[field]
  if v == nil then
    local raw = redis.call('HGET', key, field)
    v = raw and tonumber(raw) or missing
    cache[field] = v
  end
  return v
end

local function fits(agent, channel)
  local field = load_field(agent, channel)
  local cap = number_in(capacity_cache, KEYS[3], field, 0)
  if number_in(load_cache, KEYS[4], field, 0) >= cap then return false end
  local total = number_in(capacity_cache, KEYS[3], load_field(agent, '*'), -1)
  return total < 0 or number_in(load_cache, KEYS[4], load_field(agent, '*'), 0) < total
end

local function meets(agent, required)
  local have = skills_of(agent)
  for skill, level in pairs(required) do
    if (tonumber(have[skill]) or 0) < tonumber(level) then return false end
  end
  return true
end

local function qualifies(agent, requirements)
  for _, required in ipairs(requirements) do
    if meets(agent, required) then return true end
  end
  return false
end

-- Loads only grow during one call, so once no agent has room for a channel and set of skill
-- requirements, none will for the rest of the call: later conversations that need the same
-- skip the scan. This keeps a call cheap when a backlog waits and every agent is busy.
local no_room = {}

-- The agents who may be offered the conversation now. When every agent with room and the
-- skills declined it (or let an offer of it time out) within the cooldown, the customer is not
-- left waiting for the cooldown: once an offer timeout has passed since the latest of those
-- declines, the one who declined longest ago is offered it again. Until then the second
-- result is when that will be (nil when no re-offer is waited for).
local function eligible(route, requirements, declined)
  local key = route.c .. '|' .. cjson.encode(requirements)
  if no_room[key] then return {}, nil end
  local found, any_room = {}, false
  local oldest, oldest_when, latest_when = nil, nil, nil
  for _, agent in ipairs(agents) do
    if fits(agent, route.c) and qualifies(agent, requirements) then
      any_room = true
      local when = declined[agent]
      if not (when and now - when < cooldown) then
        found[#found + 1] = agent
      else
        -- Agents are sorted: on equal decline times the first id stays the oldest.
        if oldest_when == nil or when < oldest_when then oldest, oldest_when = agent, when end
        if latest_when == nil or when > latest_when then latest_when = when end
      end
    end
  end
  if not any_room then no_room[key] = true end
  if #found == 0 and oldest then
    if now - latest_when >= timeout then return {oldest}, nil end
    return found, latest_when + timeout
  end
  return found, nil
end

-- When the agent was last assigned work, counting their pending offers (_common.lua).
local function last_assigned(agent)
  local ms = last_cache[agent]
  if ms == nil then
    ms = last_assigned_ms(KEYS[5], agent)
    last_cache[agent] = ms
  end
  return ms
end

-- Decisions made in this call, in order, per agent: offers made in one call all carry the
-- same time, and count in the order they were made.
local turns, turn_count = {}, 0

-- Whether rank a comes before rank b (lists of numbers of one length, compared in order).
local function ranks_before(a, b)
  for i = 1, #a do
    if a[i] ~= b[i] then return a[i] < b[i] end
  end
  return false
end

-- The lowest key wins; ties go to the agent assigned work longest ago (then earliest in this
-- call), then to the agent id (agents are sorted).
local function idlest(pool, key)
  local best, best_rank = nil, nil
  for _, agent in ipairs(pool) do
    local rank = {key(agent), last_assigned(agent), turns[agent] or 0}
    if best == nil or ranks_before(rank, best_rank) then best, best_rank = agent, rank end
  end
  return best
end

local function round_robin(pool, queue)
  local previous = redis.call('HGET', KEYS[18], queue) or ''
  local chosen = pool[1]
  for _, agent in ipairs(pool) do
    if agent > previous then chosen = agent break end
  end
  redis.call('HSET', KEYS[18], queue, chosen)
  return chosen
end

-- The agent chosen, or nil and when a re-offer to a decliner is due (eligible()).
local function choose(route, cfg, requirements, declined)
  local pool, reoffer_at = eligible(route, requirements, declined)
  if #pool == 0 then return nil, reoffer_at end
  if cfg.strategy == 'round_robin' then return round_robin(pool, route.q) end
  if cfg.strategy == 'longest_idle' then
    return idlest(pool, function() return 0 end)
  end
  return idlest(pool, function(agent)
    local field = load_field(agent, route.c)
    return number_in(load_cache, KEYS[4], field, 0) / number_in(capacity_cache, KEYS[3], field, 0)
  end)
end

-- A preferred agent (a returning customer's last agent, or a transfer's target) gets the
-- conversation while the preference lasts and they have room; an agent who is not available
-- is never waited for, and a returning customer's agent must have the skills (pk).
-- Returns the agent, or nil and whether to keep waiting for them.
local function preferred(route, requirements)
  if not route.pa or (route.pu and now >= route.pu) then return nil, false end
  if not available[route.pa] then return nil, false end
  if route.pk and not qualifies(route.pa, requirements) then return nil, false end
  if fits(route.pa, route.c) then return route.pa, false end
  return nil, true
end

local function requirements_of(route, cfg)
  local list = {route.s or cfg.skills or {}}
  for _, name in ipairs(route.x or {}) do
    list[#list + 1] = queue_config(KEYS[13], queue_cache, name).skills or {}
  end
  return list
end

local function reserve(agent, conv, route, cfg, queue_key)
  local field = load_field(agent, route.c)
  add_load(KEYS[4], agent, route.c, 1)
  load_cache[field] = number_in(load_cache, KEYS[4], field, 0) + 1
  local total = load_field(agent, '*')
  load_cache[total] = number_in(load_cache, KEYS[4], total, 0) + 1
  -- An offer counts as an assignment while it is pending, so that this call (and the next,
  -- while the agent has not answered) turns to other agents first.
  last_cache[agent] = math.max(last_assigned(agent), now)
  turn_count = turn_count + 1
  turns[agent] = turn_count
  redis.call('ZREM', queue_key, conv)
  if cfg.auto_accept or auto_accept[agent] then
    note_assignment(KEYS[5], agent, now)
    redis.call('HSET', KEYS[7], conv, 'assigned')
    redis.call('HSET', KEYS[16], conv, agent)
    redis.call('ZADD', KEYS[17], 0, agent .. '\0' .. conv)
    redis.call('HDEL', KEYS[10], conv)
    redis.call('HSET', KEYS[20], route.kl or route.k, agent .. '|' .. now)
    restart_idle(KEYS[19], cfg, conv, now)
    if note_first_assignment(route, agent, now) then put_route(KEYS[8], conv, route) end
    emit_event('conversation_assigned', conv, now, {
      agent = agent, queue = route.q, offer_id = cjson.null, how = 'direct',
    })
    return '', 'assign'
  end
  local offer = conv .. '.' .. redis.call('HINCRBY', KEYS[14], conv, 1)
  local due = now + timeout
  redis.call('HSET', KEYS[11], offer, cjson.encode({c = conv, a = agent, d = due}))
  note_offer(KEYS[5], agent, offer, now)
  redis.call('HSET', KEYS[9], conv, offer)
  redis.call('HSET', KEYS[7], conv, 'offered')
  redis.call('ZADD', KEYS[12], due, offer)
  emit_event('conversation_offered', conv, now, {
    agent = agent, queue = route.q, offer_id = offer, due_ms = due,
  })
  return offer, 'offer'
end

local result = {}
local made = 0
for _, cand in ipairs(candidates) do
  if made >= max_decisions then break end
  local conv, queue_key = cand[1], cand[3]
  local route = get_route(KEYS[8], conv)
  if redis.call('HGET', KEYS[7], conv) ~= 'queued' or not route then
    -- Stale entry (closed or offered elsewhere): a queue holds only waiting conversations.
    redis.call('ZREM', queue_key, conv)
  else
    local cfg = queue_config(KEYS[13], queue_cache, route.q)
    local requirements = requirements_of(route, cfg)
    local agent, wait = preferred(route, requirements)
    if not agent and not wait then
      local raw_declined = redis.call('HGET', KEYS[10], conv)
      local declined = raw_declined and cjson.decode(raw_declined) or {}
      local reoffer_at
      agent, reoffer_at = choose(route, cfg, requirements, declined)
      -- Everyone who could take it declined it lately: the conversation timers wake a
      -- dispatch when the re-offer is due (timers.lua), on whichever process sweeps first.
      if reoffer_at then redis.call('ZADD', KEYS[19], reoffer_at, 'reoffer|' .. conv) end
    end
    if agent then
      local offer, mode = reserve(agent, conv, route, cfg, queue_key)
      local node = redis.call('HGET', KEYS[6], agent) or ''
      for _, v in ipairs({offer, conv, agent, node, route.q, tostring(route.e), mode}) do
        result[#result + 1] = v
      end
      made = made + 1
    end
  end
end
return result
