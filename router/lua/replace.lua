-- Place a waiting conversation afresh, where classification now puts it (a review edited from
-- five stars to one): its queue, priority, skills, grade and SLA become the new placement's,
-- and it keeps its original enqueue time, so it does not lose its place in time. Only a
-- conversation in state 'queued' moves; an offered or assigned one is left as it is (the
-- agent already has it) and its state is returned.
-- KEYS[1] conversation state (hash)   KEYS[2] conversation route (hash)
-- KEYS[3] conversation timers (zset, "kind|conversation")   KEYS[4] queue config (hash, JSON)
-- KEYS[5..] queues, names in ARGV[9..]
-- ARGV[1] conversation   ARGV[2] the new queue   ARGV[3] the new priority
-- ARGV[4] the new skill requirement, JSON ('' = the queue's own)   ARGV[5] grade ('' = none)
-- ARGV[6] the grade's SLA in seconds ('' = the queue's)
-- ARGV[7] the placement's basis, what classification decided ('' = unknown): a conversation
-- already placed on the same basis is left alone, keeping its escalation steps and ageing
-- ARGV[8] now ms   ARGV[9..] queue names
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

local function has_max_wait(cfg)
  return tonumber(cfg.max_wait_ms or 0) > 0 and (cfg.after_max_wait or 'none') ~= 'none'
end

-- The new queue's waiting timers, timed from the original enqueue time (or the opening of
-- the closed queue it was held in), as if the conversation had waited there all along.
local function restart_waiting_timers(before, after)
  local base = route.w or route.e
  local pending_max = redis.call('ZSCORE', KEYS[3], 'max|' .. conv)
  redis.call('ZREM', KEYS[3], 'esc|' .. conv, 'age|' .. conv, 'max|' .. conv)
  -- Escalation starts over from the new queue's first step; steps already due happen at the
  -- next sweeps, one per sweep, in order.
  local steps = after.escalation or {}
  if steps[1] then
    redis.call('ZADD', KEYS[3], base + steps[1].after_ms, 'esc|' .. conv)
  end
  -- Ageing: the steps its waiting time has earned in the new queue, then the next one.
  local ageing = tonumber(after.ageing_ms or 0)
  if ageing > 0 then
    local earned = now > base and math.floor((now - base) / ageing) or 0
    route.p = math.min(9, route.p + earned)
    if route.p < 9 then
      redis.call('ZADD', KEYS[3], base + (earned + 1) * ageing, 'age|' .. conv)
    end
  end
  -- The maximum wait comes once: still pending, it is retimed for the new queue; already
  -- come (the customer was told, or it was dropped while an agent held the conversation),
  -- it does not come again.
  local came = route.lm or (not pending_max and has_max_wait(before))
  if has_max_wait(after) and not came then
    redis.call('ZADD', KEYS[3], base + after.max_wait_ms, 'max|' .. conv)
  end
end

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
restart_waiting_timers(before, after)
put_route(KEYS[2], conv, route)
redis.call('ZADD', queues[target], queue_score(route.p, route.e), conv)
return {'moved', from, target}
