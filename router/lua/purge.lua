-- Forget closed conversations past the retention period: their state, route, metadata,
-- messages and bookkeeping. A conversation reopened since is left alone.
-- KEYS[1] closed conversations (zset)   KEYS[2] conversation state   KEYS[3] route
-- KEYS[4] meta   KEYS[5] offer sequence   KEYS[6] first reply   KEYS[7] decliners
-- KEYS[8] customer -> last closed (hash)   KEYS[9..] the conversations' message lists, in
-- the order of ARGV
-- ARGV[1], ARGV[2]... conversation ids
-- Returns how many were forgotten.
local purged = 0
for i = 1, #ARGV do
  local conv = ARGV[i]
  if redis.call('HGET', KEYS[2], conv) == 'closed' then
    local route = get_route(KEYS[3], conv)
    if route then
      local last = redis.call('HGET', KEYS[8], route.k) or ''
      if string.sub(last, 1, #conv + 1) == conv .. '|' then redis.call('HDEL', KEYS[8], route.k) end
    end
    for k = 2, 7 do redis.call('HDEL', KEYS[k], conv) end
    redis.call('DEL', KEYS[8 + i])
    purged = purged + 1
  end
  redis.call('ZREM', KEYS[1], conv)
end
return purged
