-- Shared helpers, prepended to every router script when it is loaded (presence/lua.py).
-- Helpers take the keys they touch as arguments: a script declares every key in KEYS.

-- Queue scores order by priority (higher first, 0..9), then by enqueue time (earlier first).
local function queue_score(priority, enqueued_ms)
  if priority > 9 then priority = 9 elseif priority < 0 then priority = 0 end
  return (9 - priority) * 1e13 + enqueued_ms
end

-- Lifecycle events (docs/events.md) are written by the call that makes the change they
-- describe, so that none is lost or invented when a process dies between the two. A script
-- that writes events takes the tenant's event stream as its last key, KEYS[#KEYS], and the
-- stream's trim as its last two arguments (after any variadic group, which stops before
-- them): ARGV[#ARGV-1] how many entries are kept, about (0: events are off), ARGV[#ARGV] how
-- old the oldest may be, ms (0: no age limit).
local EVENT_ARGS = 2
-- The age trim is done once per call, with the first event (MINID drops whole blocks).
local events_aged = false

-- data: a table (encoded here) or JSON text already encoded.
local function emit_event(kind, conv, now, data)
  local max_len = tonumber(ARGV[#ARGV - 1]) or 0
  if max_len <= 0 then return end
  local stream = KEYS[#KEYS]
  local encoded = type(data) == 'string' and data or cjson.encode(data or {})
  redis.call('XADD', stream, 'MAXLEN', '~', max_len, '*', 'type', kind,
    'occurred_at', string.format('%d', now), 'tenant', string.match(stream, '{(.-)}') or '',
    'conversation_id', conv, 'data', encoded)
  -- Stream ids are Redis's clock, not the caller's: the age is counted on that clock.
  local max_age = tonumber(ARGV[#ARGV]) or 0
  if max_age > 0 and not events_aged then
    events_aged = true
    local t = redis.call('TIME')
    local server_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if server_ms > max_age then
      redis.call('XTRIM', stream, 'MINID', '~', string.format('%d', server_ms - max_age))
    end
  end
end

-- A value for an event's data that is JSON null when absent (nil drops the field).
local function or_null(value)
  if value == nil or value == '' then return cjson.null end
  return value
end

-- Queue keys arrive as KEYS[first_key..] and their names as ARGV[first_arg..], in order,
-- ending before the event arguments.
local function queue_map(first_key, first_arg)
  local map = {}
  local k = first_key
  for a = first_arg, #ARGV - EVENT_ARGS do
    map[ARGV[a]] = KEYS[k]
    k = k + 1
  end
  return map
end

-- An agent's load is kept per channel and in total ('agent|*'), for the optional total cap.
local function add_load(load_key, agent, channel, delta)
  redis.call('HINCRBY', load_key, load_field(agent, channel), delta)
  redis.call('HINCRBY', load_key, load_field(agent, '*'), delta)
end

-- The last-assigned hash and load_field: presence/lua/_index.lua, prepended before this.
local function note_assignment(last_key, agent, now)
  local was = tonumber(redis.call('HGET', last_key, agent))
  if not was or was < now then redis.call('HSET', last_key, agent, now) end
end

local function note_offer(last_key, agent, offer, now)
  local field = pending_offers_field(agent)
  local raw = redis.call('HGET', last_key, field)
  local pending = raw and cjson.decode(raw) or {}
  pending[offer] = now
  redis.call('HSET', last_key, field, cjson.encode(pending))
end

local function forget_offer(last_key, agent, offer)
  local field = pending_offers_field(agent)
  local raw = redis.call('HGET', last_key, field)
  if not raw then return end
  local pending = cjson.decode(raw)
  pending[offer] = nil
  if next(pending) == nil then
    redis.call('HDEL', last_key, field)
  else
    redis.call('HSET', last_key, field, cjson.encode(pending))
  end
end

local function get_route(route_key, conv)
  local raw = redis.call('HGET', route_key, conv)
  if not raw then return nil end
  return cjson.decode(raw)
end

local function put_route(route_key, conv, route)
  redis.call('HSET', route_key, conv, cjson.encode(route))
end

-- The first assignment (when, to whom) stays in the route for the reports: handling time and
-- the SLA count from it, whatever transfers follow. Returns whether the route changed.
local function note_first_assignment(route, agent, now)
  if route.fa then return false end
  route.fa = now
  route.fg = agent
  return true
end

local function queue_config(cfg_key, cache, name)
  local q = cache[name]
  if q == nil then
    local raw = redis.call('HGET', cfg_key, name)
    q = raw and cjson.decode(raw) or {skills = {}, strategy = 'least_loaded'}
    cache[name] = q
  end
  return q
end

-- Put a conversation back in its queue with its original enqueue time (docs/design.md,
-- invariants 6 and 7).
local function requeue(state_key, queues, conv, route)
  redis.call('HSET', state_key, conv, 'queued')
  local key = queues[route.q]
  if key then
    redis.call('ZADD', key, queue_score(route.p, route.e), conv)
  end
end

-- The last four: a graded complaint's deadlines (router/deadlines.py).
local TIMER_KINDS = {'esc', 'age', 'max', 'idle', 'idle2', 'reoffer',
  'first_remind', 'first_due', 'resolve_remind', 'resolve_due'}

local function clear_timers(timers_key, conv)
  for _, kind in ipairs(TIMER_KINDS) do
    redis.call('ZREM', timers_key, kind .. '|' .. conv)
  end
end

-- The inactivity clock of an assigned conversation restarts with every message: the warning
-- first when there is one, else straight to the close.
local function restart_idle(timers_key, cfg, conv, now)
  redis.call('ZREM', timers_key, 'idle|' .. conv, 'idle2|' .. conv)
  local warn = tonumber(cfg.idle_warn_ms or 0)
  local close = tonumber(cfg.idle_close_ms or 0)
  if warn > 0 then
    redis.call('ZADD', timers_key, now + warn, 'idle|' .. conv)
  elseif close > 0 then
    redis.call('ZADD', timers_key, now + close, 'idle2|' .. conv)
  end
end

-- Take back a pending offer: free the reservation, stop counting it as the agent's last
-- assignment, remember the agent as a decliner, drop a preference for that agent, and requeue.
-- k holds the keys: offers, timers, offer_of, state, route, load, declined, last (the
-- last-assigned hash), ix (the agent index's keys, _index.lua). Returns {offer, conv, agent, queue, the offer's due ms}, nil when
-- there is no such offer, or false when expected_agent is given and the offer is someone else's.
local function release_offer(k, queues, offer, expected_agent, now)
  local raw = redis.call('HGET', k.offers, offer)
  if not raw then return nil end
  local o = cjson.decode(raw)
  if expected_agent ~= '' and o.a ~= expected_agent then return false end
  redis.call('HDEL', k.offers, offer)
  redis.call('ZREM', k.timers, offer)
  if redis.call('HGET', k.offer_of, o.c) == offer then redis.call('HDEL', k.offer_of, o.c) end
  local route = get_route(k.route, o.c)
  add_load(k.load, o.a, route.c, -1)
  forget_offer(k.last, o.a, offer)
  index_agent(k.ix, o.a)
  local raw_declined = redis.call('HGET', k.declined, o.c)
  local declined = raw_declined and cjson.decode(raw_declined) or {}
  declined[o.a] = now
  redis.call('HSET', k.declined, o.c, cjson.encode(declined))
  if route.pa == o.a then
    route.pa = nil
    route.pu = nil
    put_route(k.route, o.c, route)
  end
  requeue(k.state, queues, o.c, route)
  return {offer, o.c, o.a, route.q, o.d or 0}
end

local function has_max_wait(cfg)
  return tonumber(cfg.max_wait_ms or 0) > 0 and (cfg.after_max_wait or 'none') ~= 'none'
end

-- Give a conversation that waits again (placed afresh, transferred, or back from an agent gone
-- past the grace period) the waiting timers of its queue, `after`, timed from its original
-- enqueue time (or the opening of the closed queue it was held in), as if it had waited there
-- all along. `before` is the config of the queue it was in. The route is changed in place; the
-- caller stores it. how.catch_up: ageing gives the priority the steps its wait has earned and
-- not had yet (route.ag counts the steps had); otherwise the priority stays. how.held: an
-- agent held it, so a missing maximum-wait timer was dropped while they did, not come.
local function restart_waiting_timers(timers_key, conv, route, before, after, now, how)
  local base = route.w or route.e
  local pending_max = redis.call('ZSCORE', timers_key, 'max|' .. conv)
  redis.call('ZREM', timers_key, 'esc|' .. conv, 'age|' .. conv, 'max|' .. conv)
  -- Escalation goes on from the step after those done (the caller clears route.es to start
  -- over from the first); steps already due happen at the next sweeps, one per sweep, in order.
  local steps = after.escalation or {}
  local next_step = steps[(route.es or 0) + 1]
  if next_step then
    redis.call('ZADD', timers_key, base + next_step.after_ms, 'esc|' .. conv)
  end
  -- Ageing: with how.catch_up (a new placement's priority), the steps its waiting time has
  -- earned in this queue; otherwise the priority stays. Then the next step not had yet, timed
  -- from enqueue: one already due (missed while an agent held it) happens at the next sweep.
  local ageing = tonumber(after.ageing_ms or 0)
  if ageing > 0 then
    local had = route.ag or 0
    local steps_had = had
    if how.catch_up then
      local earned = now > base and math.floor((now - base) / ageing) or 0
      if earned > had then
        route.p = math.min(9, route.p + earned - had)
        steps_had = earned
      end
    end
    if steps_had > 0 then route.ag = steps_had end
    if route.p < 9 then
      redis.call('ZADD', timers_key, base + (steps_had + 1) * ageing, 'age|' .. conv)
    end
  end
  -- The maximum wait comes once: still due, it is timed for this queue; already come (the
  -- customer was told: route.mw, or marked leave_message: route.lm), it does not come again.
  -- Of a conversation no agent held, a missing timer came too (or was dropped while an agent
  -- held it before requeues restarted timers).
  local came = route.lm or route.mw or (not how.held and not pending_max and has_max_wait(before))
  if has_max_wait(after) and not came then
    redis.call('ZADD', timers_key, base + after.max_wait_ms, 'max|' .. conv)
  end
end
