-- Fire the conversation timers that are due: escalation steps, priority ageing, the maximum
-- wait, inactivity, and the re-offer to a decliner that dispatch.lua waits for. Routing changes happen here, atomically; what needs a channel (an
-- auto-reply, a close with a message) is returned for the caller, and timers whose follow-up
-- the caller must do are leased (moved lease_ms ahead) rather than removed, so that a
-- process dying before the follow-up strands nothing: the close removes them.
-- KEYS[1] timers: conversation timers (zset, "kind|conversation")
-- KEYS[2] state: conversation state (hash)
-- KEYS[3] route: conversation route (hash)
-- KEYS[4] queue_config: queue config (hash, JSON)
-- KEYS[5..] queue_keys: the queues open now, in the order of queue_names
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] now_ms: now, ms
-- ARGV[2] limit: most timers to fire
-- ARGV[3] lease_ms: lease and retry ms
-- ARGV[4..] queue_names: the open queues' names
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns a flat list, three items per event: kind ('escalated' | 'aged' | 'max_wait' |
-- 'idle_warn' | 'idle_close' | 'reoffer' | 'complaint_reminder' | 'complaint_deadline' |
-- 'complaint_transfer'), conversation, detail (step number, priority, action, a complaint's
-- deadline, 'deadline|outcome' or 'deadline|queue', or '').
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])
local queues = queue_map(5, 4)
local cache = {}
local result = {}
local function emit(kind, conv, detail)
  result[#result + 1] = kind
  result[#result + 1] = conv
  result[#result + 1] = tostring(detail)
end

local function later(member, at)
  redis.call('ZADD', KEYS[1], at, member)
end

local function rescore(conv, route)
  redis.call('ZADD', queues[route.q], queue_score(route.p, route.e), conv)
end

local function escalate(conv, route, cfg)
  local steps = cfg.escalation or {}
  local index = (route.es or 0) + 1
  local step = steps[index]
  if not step then return end
  if step.relax then route.s = {} elseif step.skills then route.s = step.skills end
  if step.overflow and cfg.overflow then route.x = {cfg.overflow} end
  if step.raise and step.raise > 0 then route.p = math.min(9, route.p + step.raise) end
  route.es = index
  if steps[index + 1] then
    later('esc|' .. conv, (route.w or route.e) + steps[index + 1].after_ms)
  end
  emit('escalated', conv, index)
  emit_event('conversation_escalated', conv, now, {
    step = index, queue = route.q, priority = route.p,
  })
end

local function age(conv, route, cfg)
  if route.p >= 9 or not cfg.ageing_ms or cfg.ageing_ms <= 0 then return end
  route.p = route.p + 1
  route.ag = (route.ag or 0) + 1
  if route.p < 9 then later('age|' .. conv, now + cfg.ageing_ms) end
  emit('aged', conv, route.p)
end

local function waiting_timer(member, kind, conv, state, route, cfg)
  if state == 'assigned' then return end
  if not queues[route.q] or state == 'offered' then
    -- Closed for now, or an offer is out: look again later.
    later(member, now + lease)
    return
  end
  if kind == 'esc' then
    escalate(conv, route, cfg)
  elseif kind == 'age' then
    age(conv, route, cfg)
  else
    local action = cfg.after_max_wait or 'none'
    route.mw = 1
    if action == 'leave_message' then route.lm = 1 end
    if action == 'close' then later(member, now + lease) end
    emit('max_wait', conv, action)
  end
  put_route(KEYS[3], conv, route)
  rescore(conv, route)
end

-- A graded complaint's deadlines (router/deadlines.py): a reminder is marked in the route and
-- told; a deadline is marked, counted once, and the grade's action applied here. A move this
-- script cannot make now (an offer out, a queue closed now, or an agent holding it, whom the
-- caller transfers it from: 'transfer') is looked at again after the lease.
local DEADLINES = {first_remind = 'f', first_due = 'f', resolve_remind = 'r', resolve_due = 'r'}

local function deadline_timer(member, kind, conv, state, route)
  local dl = route.dl
  local which = DEADLINES[kind]
  if not dl or (which == 'f' and dl.fm) then return end
  local name = which == 'f' and 'first_response' or 'resolve'
  if kind == 'first_remind' or kind == 'resolve_remind' then
    dl[which .. 'w'] = now
    put_route(KEYS[3], conv, route)
    emit_event('complaint_reminder', conv, now, {deadline = name, grade = or_null(route.g),
      queue = route.q})
    emit('complaint_reminder', conv, name)
    return
  end
  local first_time = not dl[which .. 'x']
  if first_time then dl[which .. 'x'] = now end
  local outcome = dl.a
  if dl.a == 'raise_priority' and dl.p then
    if route.p < dl.p then route.p = dl.p end
    -- Its place in line is the queue's score: a queue closed now is rescored once it opens.
    if state == 'queued' then
      if queues[route.q] then rescore(conv, route) else later(member, now + lease) end
    end
  elseif dl.a == 'move_to_queue' and dl.q and route.q ~= dl.q then
    if state == 'queued' and queues[route.q] and queues[dl.q] then
      local before = queue_config(KEYS[4], cache, route.q)
      redis.call('ZREM', queues[route.q], conv)
      route.q, route.s, route.x, route.es = dl.q, nil, nil, nil
      restart_waiting_timers(KEYS[1], conv, route, before, queue_config(KEYS[4], cache, dl.q),
        now, {})
      rescore(conv, route)
    else
      later(member, now + lease)
      outcome = state == 'assigned' and 'transfer' or 'later'
    end
  end
  put_route(KEYS[3], conv, route)
  if first_time then
    emit_event('complaint_deadline_missed', conv, now, {deadline = name,
      grade = or_null(route.g), queue = route.q, action = outcome})
    emit('complaint_deadline', conv, name .. '|' .. outcome)
  elseif outcome == 'transfer' then
    emit('complaint_transfer', conv, name .. '|' .. dl.q)
  end
end

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '|', 1, true)
  local kind, conv = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  local state = redis.call('HGET', KEYS[2], conv)
  local route = get_route(KEYS[3], conv)
  if state and state ~= 'closed' and route then
    local cfg = queue_config(KEYS[4], cache, route.q)
    if kind == 'esc' or kind == 'age' or kind == 'max' then
      waiting_timer(member, kind, conv, state, route, cfg)
    elseif state == 'assigned' and kind == 'idle' then
      local close_ms = tonumber(cfg.idle_close_ms or 0)
      if close_ms > 0 then later('idle2|' .. conv, now + close_ms - (cfg.idle_warn_ms or 0)) end
      emit('idle_warn', conv, '')
    elseif state == 'assigned' and kind == 'idle2' then
      later(member, now + lease)
      emit('idle_close', conv, '')
    elseif kind == 'reoffer' and state == 'queued' then
      -- Nothing changes here: the caller asks for a dispatch, which makes the re-offer.
      emit('reoffer', conv, '')
    elseif DEADLINES[kind] then
      deadline_timer(member, kind, conv, state, route)
    end
  end
end
return result
