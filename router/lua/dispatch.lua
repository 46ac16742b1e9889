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
-- KEYS[21] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[22] agent_index: the agent index (zset, lex)
-- KEYS[23..] queue_keys: the queues open now, in the order of queue_names
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

-- The agent index (_index.lua) gives the agents in the strategy's order: a decision looks at
-- the few it walks, never at every agent online.
if redis.call('SCARD', KEYS[1]) == 0 then return {} end
local ix = {available = KEYS[1], load = KEYS[4], last = KEYS[5], info = KEYS[21], index = KEYS[22]}
local known_pools = {}
for _, name in ipairs(index_settings(ix).p) do known_pools[name] = true end

local candidates = {}
for k = 23, #KEYS - 1 do
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

local skills_cache, load_cache, capacity_cache, queue_cache = {}, {}, {}, {}
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
-- skip the walk. This keeps a call cheap when a backlog waits and every agent is busy.
local no_room = {}

-- Walk the index entries of one strategy, pool and channel in order, from `from` (a
-- ZRANGEBYLEX bound; nil: the first), calling visit(agent, rank without the agent) until it
-- returns true. A few entries are read at a time: a walk usually stops at the first.
local WALK_STEP = 8
local function walk(code, pool, channel, from, visit)
  local prefix = index_prefix(code, pool, channel)
  local at = INDEX_AGENT_AT[code]
  local start, stop = from or ('[' .. prefix), '(' .. prefix .. '\255'
  while true do
    local items = redis.call('ZRANGEBYLEX', KEYS[22], start, stop, 'LIMIT', 0, WALK_STEP)
    for _, member in ipairs(items) do
      local rank = string.sub(member, #prefix + 1)
      if visit(string.sub(rank, at), string.sub(rank, 1, at - 1)) then return end
    end
    if #items < WALK_STEP then return end
    start = '(' .. items[#items]
  end
end

-- Decisions made in this call, in order, per agent: offers made in one call all carry the
-- same time, and count in the order they were made.
local turns, turn_count = {}, 0

-- Whether (key, turn, agent) a comes before b: the strategy's key, then the order of this
-- call's decisions (an agent offered work in this call, at `now`, after one not), then the id.
local function before(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  if a[2] ~= b[2] then return a[2] < b[2] end
  return a[3] < b[3]
end

-- The agent chosen for the conversation, or nil and when a re-offer to a decliner is due.
-- Each requirement (the conversation's skills, then its overflow queues') is walked in the
-- pool of agents who meet it (pool '' with a check of the skills when no queue or escalation
-- step asks for exactly it). Every agent walked is checked against the skills and capacity
-- hashes, so an index not yet rebuilt for a new configuration never offers work to an agent
-- who cannot take it. When every agent with room and the skills declined it (or let an
-- offer of it time out) within the cooldown, the customer is not left waiting for the
-- cooldown: once an offer timeout has passed since the latest of those declines, the one who
-- declined longest ago is offered it again. Until then the second result is when that will be.
local function choose(route, cfg, requirements, declined)
  local key = route.c .. '|' .. cjson.encode(requirements)
  if no_room[key] then return nil, nil end
  local code = index_code(cfg.strategy)
  local previous = code == 'rr' and (redis.call('HGET', KEYS[18], route.q) or '') or nil
  local best, best_rank = nil, nil
  local any_room = false
  local oldest, oldest_when, latest_when = nil, nil, nil
  local idle_now = string.format('%015d', now)
  local function consider(agent, required)
    if not (fits(agent, route.c) and meets(agent, required)) then return 'skip' end
    any_room = true
    local when = declined[agent]
    if when and now - when < cooldown then
      if oldest_when == nil or when < oldest_when or (when == oldest_when and agent < oldest) then
        oldest, oldest_when = agent, when
      end
      if latest_when == nil or when > latest_when then latest_when = when end
      return 'skip'
    end
    return 'take'
  end
  local walked = {}
  for _, required in ipairs(requirements) do
    local pool = requirement_pool(required)
    if not known_pools[pool] then pool = '' end
    local walk_key = pool .. '\0' .. cjson.encode(required)
    if not walked[walk_key] then
      walked[walk_key] = true
      if code == 'rr' then
        -- The first agent after the one chosen last, else the first of all.
        local function first_from(from)
          local found = nil
          walk(code, pool, route.c, from, function(agent)
            if consider(agent, required) == 'take' then found = agent return true end
            return false
          end)
          return found
        end
        local after = first_from('(' .. index_prefix(code, pool, route.c) .. previous)
        local rank = after and {0, after} or nil
        if not after then
          local first = first_from(nil)
          if first then rank = {1, first} end
        end
        if rank and (best_rank == nil or rank[1] < best_rank[1]
            or (rank[1] == best_rank[1] and rank[2] < best_rank[2])) then
          best, best_rank = rank[2], rank
        end
      else
        -- The first agent taken wins, but agents given work in this call all rank at `now`:
        -- among those tied with it there, the order of this call's decisions decides.
        local found = nil
        walk(code, pool, route.c, nil, function(agent, rank_key)
          if found and (rank_key ~= found[1] or string.sub(rank_key, -16, -2) ~= idle_now) then
            return true
          end
          if consider(agent, required) == 'take' then
            local rank = {rank_key, turns[agent] or 0, agent}
            if found == nil or before(rank, found) then found = rank end
          end
          return false
        end)
        if found and (best_rank == nil or before(found, best_rank)) then
          best, best_rank = found[3], found
        end
      end
    end
  end
  if not any_room then no_room[key] = true end
  if best == nil and oldest then
    if now - latest_when < timeout then return nil, latest_when + timeout end
    best = oldest
  end
  if best and code == 'rr' then redis.call('HSET', KEYS[18], route.q, best) end
  return best, nil
end

-- A preferred agent (a returning customer's last agent, or a transfer's target) gets the
-- conversation while the preference lasts and they have room; an agent who is not available
-- is never waited for, and a returning customer's agent must have the skills (pk).
-- Returns the agent, or nil and whether to keep waiting for them.
local function preferred(route, requirements)
  if not route.pa or (route.pu and now >= route.pu) then return nil, false end
  if redis.call('SISMEMBER', KEYS[1], route.pa) == 0 then return nil, false end
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
  -- An offer counts as an assignment while it is pending (note_offer), so that this call
  -- (and the next, while the agent has not answered) turns to other agents first.
  turn_count = turn_count + 1
  turns[agent] = turn_count
  redis.call('ZREM', queue_key, conv)
  if cfg.auto_accept or auto_accept[agent] then
    note_assignment(KEYS[5], agent, now)
    index_agent(ix, agent)
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
  index_agent(ix, agent)
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
