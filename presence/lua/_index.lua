-- The agent index (docs/design.md, "The agent index"), prepended to every presence and router
-- script when it is loaded (presence/lua.py), before the package's own _common.lua.
-- A routing decision must not look at every agent online: one sorted set, the agent index,
-- holds per strategy, skill pool and channel the agents who are available and have room
-- there, in the order the strategy offers them work. Every script that changes an agent's
-- status, load or last assignment calls index_agent for that agent before it returns, so that
-- the index never lags the state it is computed from. All members have score 0 and sort by
-- their text: "<strategy>|<pool>|<channel>|<rank>", the rank ending with the agent id.
-- Helpers take the keys they touch in ix: available (set), load (hash), last (the
-- last-assigned hash), info (hash: agent -> what the index knows of them; field '' the
-- tenant's pools and strategies) and index (the sorted set).

local function load_field(agent, channel)
  return agent .. '|' .. channel
end

-- When each agent was last assigned work, for longest_idle and the tie-breaks (the
-- last-assigned hash): field 'agent' holds the ms of their last assignment (an accepted offer,
-- or a direct one), field 'agent|offers' their pending offers as JSON {offer id: ms offered}.
-- An agent ranks by the later of the two: a pending offer counts as an assignment made when
-- it was offered until it is accepted (then the accept counts) or declined, timed out or taken
-- back (then it stops counting, and the agent is as idle as before it).
local function pending_offers_field(agent)
  return agent .. '|offers'
end

local function last_assigned_ms(last_key, agent)
  local raw = redis.call('HMGET', last_key, agent, pending_offers_field(agent))
  local ms = tonumber(raw[1]) or 0
  if raw[2] then
    for _, offered in pairs(cjson.decode(raw[2])) do
      if offered > ms then ms = offered end
    end
  end
  return ms
end

local INDEX_CODES = {least_loaded = 'll', longest_idle = 'li', round_robin = 'rr'}
-- Ranks have a fixed width before the agent id, so that text order is number order:
-- least_loaded "<load/capacity, 14 chars>|<last assigned ms, 15 digits>|agent",
-- longest_idle "<last assigned ms>|agent", round_robin "agent".
local INDEX_AGENT_AT = {ll = 32, li = 17, rr = 1}

local function index_code(strategy)
  return INDEX_CODES[strategy or 'least_loaded'] or 'll'
end

local function index_prefix(code, pool, channel)
  return code .. '|' .. pool .. '|' .. channel .. '|'
end

-- A skill requirement as a pool name: its skills with a level above 0, sorted; '' is every
-- agent. The same requirement always gives the same name.
local function requirement_pool(required)
  local parts = {}
  for skill, level in pairs(required or {}) do
    local n = tonumber(level) or 0
    if n > 0 then parts[#parts + 1] = skill .. ':' .. string.format('%.17g', n) end
  end
  table.sort(parts)
  return table.concat(parts, ',')
end

local function index_rank(code, agent, load, cap, last)
  if code == 'rr' then return agent end
  local idle = string.format('%015d', last)
  if code == 'li' then return idle .. '|' .. agent end
  return string.format('%.12f', load / cap) .. '|' .. idle .. '|' .. agent
end

-- The tenant's pools and strategies (written by index_rebuild.lua), read once per call.
local index_settings_read = nil
local function index_settings(ix)
  if index_settings_read == nil then
    local raw = redis.call('HGET', ix.info, '')
    index_settings_read = raw and cjson.decode(raw) or {p = {''}, s = {'ll'}}
  end
  return index_settings_read
end

-- The members an agent has now: info is {p = pools they meet, c = {channel = capacity},
-- t = total capacity or -1}.
local function index_members(ix, agent, info)
  local members = {}
  if redis.call('SISMEMBER', ix.available, agent) == 0 then return members end
  local total = tonumber(info.t) or -1
  if total >= 0 and (tonumber(redis.call('HGET', ix.load, load_field(agent, '*'))) or 0) >= total then
    return members
  end
  local codes = index_settings(ix).s
  local last = nil
  for channel, cap in pairs(info.c) do
    local load = tonumber(redis.call('HGET', ix.load, load_field(agent, channel))) or 0
    if load < cap then
      last = last or last_assigned_ms(ix.last, agent)
      for _, pool in ipairs(info.p) do
        for _, code in ipairs(codes) do
          members[#members + 1] = index_prefix(code, pool, channel)
            .. index_rank(code, agent, load, cap, last)
        end
      end
    end
  end
  return members
end

-- Bring one agent's members in step with their state. info: what index_rebuild.lua recorded
-- of them (read here when not given). An agent it never recorded has no members.
local function index_agent(ix, agent, info)
  if info == nil then
    local raw = redis.call('HGET', ix.info, agent)
    if not raw then return end
    info = cjson.decode(raw)
  end
  local members = info.c and index_members(ix, agent, info) or {}
  local wanted, had = {}, {}
  for _, m in ipairs(members) do wanted[m] = true end
  for _, m in ipairs(info.m or {}) do
    had[m] = true
    if not wanted[m] then redis.call('ZREM', ix.index, m) end
  end
  local changed = #members ~= #(info.m or {})
  for _, m in ipairs(members) do
    if not had[m] then
      redis.call('ZADD', ix.index, 0, m)
      changed = true
    end
  end
  if changed then
    info.m = members
    redis.call('HSET', ix.info, agent, cjson.encode(info))
  end
end
