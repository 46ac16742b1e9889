-- Read a webhook's next events from the tenant's stream into its consumer group, and note
-- each one to deliver as unacknowledged for its conversation in the same call: a process
-- reading a conversation's later event then finds the earlier one noted, whoever holds it.
-- Events of types the webhook does not take are acknowledged here.
-- KEYS[1] events: the tenant's lifecycle events (stream)
-- KEYS[2] unacked: the webhook's unacknowledged events, "conversation\0sortable id" (zset, lex)
-- ARGV[1] group: the webhook's consumer group
-- ARGV[2] consumer: this process's consumer name
-- ARGV[3] count: most entries to read
-- ARGV[4..] types: the event types the webhook takes ('*' = every type)
-- Returns a list of {id, {field, value, ...}}, the entries to deliver, in stream order.
local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
  'STREAMS', KEYS[1], '>')
if not read then return {} end
local takes, every = {}, false
for i = 4, #ARGV do
  if ARGV[i] == '*' then every = true end
  takes[ARGV[i]] = true
end
local out = {}
for _, entry in ipairs(read[1][2]) do
  local id, fields = entry[1], entry[2]
  local f = {}
  for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
  if every or takes[f.type] then
    local ms, seq = string.match(id, '(%d+)-(%d+)')
    local conv = f.conversation_id or ''
    redis.call('ZADD', KEYS[2], 0, conv .. '\0' .. string.format('%015d-%010d', ms, seq))
    out[#out + 1] = {id, fields}
  else
    redis.call('XACK', KEYS[1], ARGV[1], id)
  end
end
return out
