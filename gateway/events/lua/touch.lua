-- Before delivery attempts: for each event, whether this process still holds it and it is its
-- conversation's earliest unacknowledged one. A held event's idle time restarts, so that no
-- other process claims it while this one retries it (or waits for the earlier event).
-- KEYS[1] events: the tenant's lifecycle events (stream)
-- KEYS[2] unacked: the webhook's unacknowledged events, "conversation\0sortable id" (zset, lex)
-- ARGV[1] group: the webhook's consumer group
-- ARGV[2] consumer: this process's consumer name
-- ARGV[3..] items: event id, its conversation, event id, its conversation...
-- Returns one outcome per event, in order: 'go' | 'wait' (an earlier event of the
-- conversation is unacknowledged) | 'lost' (another process holds it now, or it was
-- acknowledged)
local out = {}
for i = 3, #ARGV, 2 do
  local id, conv = ARGV[i], ARGV[i + 1]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if #pending == 0 or pending[1][2] ~= ARGV[2] then
    out[#out + 1] = 'lost'
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    local first = redis.call('ZRANGE', KEYS[2], '[' .. conv .. '\0', '(' .. conv .. '\1',
      'BYLEX', 'LIMIT', 0, 1)
    local ms, seq = string.match(id, '(%d+)-(%d+)')
    if first[1] and first[1] ~= conv .. '\0' .. string.format('%015d-%010d', ms, seq) then
      out[#out + 1] = 'wait'
    else
      out[#out + 1] = 'go'
    end
  end
end
return out
