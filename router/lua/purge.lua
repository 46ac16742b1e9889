-- Forget closed conversations past the retention period: their state, route, metadata,
-- messages, notes and bookkeeping. A conversation reopened since is left alone.
-- KEYS[1] closed: closed conversations (zset)
-- KEYS[2] state: conversation state (hash)
-- KEYS[3] route: conversation route (hash)
-- KEYS[4] meta: conversation meta (hash)
-- KEYS[5] offer_seq: offer sequence per conversation (hash)
-- KEYS[6] first_reply: first reply ms per conversation (hash)
-- KEYS[7] declined: decliners (hash)
-- KEYS[8] last_closed: customer -> last closed (hash)
-- KEYS[9..] message_lists: the conversations' message lists, in the order of conversations
-- KEYS[9+conversations..] note_lists: the conversations' note lists, in the order of conversations
-- ARGV[1..] conversations: conversation ids
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
    redis.call('DEL', KEYS[8 + i], KEYS[8 + #ARGV + i])
    purged = purged + 1
  end
  redis.call('ZREM', KEYS[1], conv)
end
return purged
