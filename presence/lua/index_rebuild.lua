-- Rebuild the agent index (lua/_index.lua) from the configuration the gateway published: the
-- agents' skills and capacity, and the queues' skills, escalation steps and strategies. Run
-- at start-up, after both are published. One call does it all, so that no routing decision
-- sees half of it; dispatch.lua checks every agent it takes from the index against the skills
-- and capacity hashes, so that before this call an agent is at worst not offered work they
-- could now take, never offered work they cannot.
-- KEYS[1] skills: agent skills (hash, JSON)
-- KEYS[2] capacity: capacity per "agent|channel" (hash)
-- KEYS[3] queue_config: queue config (hash, JSON)
-- KEYS[4] available: available agents (set)
-- KEYS[5] load: load (hash)
-- KEYS[6] last_assigned: agent last assigned and pending offers (hash)
-- KEYS[7] agent_index_info: what the agent index knows of each agent (hash, JSON)
-- KEYS[8] agent_index: the agent index (zset, lex)
-- Returns the number of agents indexed.
local ix = {available = KEYS[4], load = KEYS[5], last = KEYS[6], info = KEYS[7], index = KEYS[8]}

-- The requirements dispatch can meet through a pool: every queue's skills and every
-- escalation step's; any other requirement (a rule's) walks the pool of every agent, ''.
local pools, pool_list, codes, code_list = {[''] = {}}, {''}, {}, {}
local function add_pool(required)
  local name = requirement_pool(required)
  if not pools[name] then
    pools[name] = required or {}
    pool_list[#pool_list + 1] = name
  end
end
local queues = redis.call('HGETALL', KEYS[3])
for i = 2, #queues, 2 do
  local cfg = cjson.decode(queues[i])
  add_pool(cfg.skills)
  for _, step in ipairs(cfg.escalation or {}) do
    if step.skills then add_pool(step.skills) end
  end
  local code = index_code(cfg.strategy)
  if not codes[code] then
    codes[code] = true
    code_list[#code_list + 1] = code
  end
end
if #code_list == 0 then code_list = {'ll'} end
table.sort(code_list)
table.sort(pool_list)
index_settings_read = {p = pool_list, s = code_list}
redis.call('HSET', KEYS[7], '', cjson.encode(index_settings_read))

local capacity = {}
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local agent, channel = string.match(fields[i], '^(.*)|([^|]*)$')
  if agent then
    capacity[agent] = capacity[agent] or {c = {}, t = -1}
    if channel == '*' then
      capacity[agent].t = tonumber(fields[i + 1])
    elseif tonumber(fields[i + 1]) > 0 then
      capacity[agent].c[channel] = tonumber(fields[i + 1])
    end
  end
end

local function meets(have, required)
  for skill, level in pairs(required) do
    if (tonumber(have[skill]) or 0) < tonumber(level) then return false end
  end
  return true
end

local configured = {}
local count = 0
local skills = redis.call('HGETALL', KEYS[1])
for i = 1, #skills, 2 do
  local agent, have = skills[i], cjson.decode(skills[i + 1])
  configured[agent] = true
  local raw = redis.call('HGET', KEYS[7], agent)
  local info = raw and cjson.decode(raw) or {}
  local cap = capacity[agent] or {c = {}, t = -1}
  info.p, info.c, info.t = {}, cap.c, cap.t
  for _, name in ipairs(pool_list) do
    if meets(have, pools[name]) then info.p[#info.p + 1] = name end
  end
  -- cjson writes an empty table as {}: the members are compared as a list.
  info.m = info.m or {}
  index_agent(ix, agent, info)
  redis.call('HSET', KEYS[7], agent, cjson.encode(info))
  count = count + 1
end

-- Agents no longer configured leave the index.
local known = redis.call('HKEYS', KEYS[7])
for _, agent in ipairs(known) do
  if agent ~= '' and not configured[agent] then
    local info = cjson.decode(redis.call('HGET', KEYS[7], agent))
    for _, m in ipairs(info.m or {}) do redis.call('ZREM', KEYS[8], m) end
    redis.call('HDEL', KEYS[7], agent)
  end
end
return count
