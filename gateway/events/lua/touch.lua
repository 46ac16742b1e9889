-- Before a delivery attempt: whether this process still holds the event and it is its
-- conversation's earliest unacknowledged one. Held, its idle time restarts, so that no other
-- process claims it while this one retries (or waits for the earlier event).
-- KEYS[1] events: the tenant's lifecycle events (stream)
-- KEYS[2] unacked: the webhook's unacknowledged events, "conversation\0sortable id" (zset, lex)
-- ARGV[1] group: the webhook's consumer group
-- ARGV[2] consumer: this process's consumer name
-- ARGV[3] id: the event's stream id
-- ARGV[4] conversation: the event's conversation
-- Returns 'go' | 'wait' (an earlier event of the conversation is unacknowledged) |
--         'lost' (another process holds it now, or it was acknowledged)
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then return 'lost' end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
local conv = ARGV[4]
local first = redis.call('ZRANGE', KEYS[2], '[' .. conv .. '\0', '(' .. conv .. '\1',
  'BYLEX', 'LIMIT', 0, 1)
local ms, seq = string.match(ARGV[3], '(%d+)-(%d+)')
if first[1] and first[1] ~= conv .. '\0' .. string.format('%015d-%010d', ms, seq) then
  return 'wait'
end
return 'go'
