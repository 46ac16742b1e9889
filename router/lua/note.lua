-- Add an internal note to an open conversation: its agent's, or anyone's for a supervisor.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] agent_of: conversation -> agent (hash)
-- KEYS[3] notes: the conversation's internal notes (list)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation
-- ARGV[2] agent: the agent adding it ('' = a supervisor)
-- ARGV[3] note: the note (msgpack)
-- ARGV[4] keep: how many notes a conversation keeps, the oldest dropped first
-- ARGV[5] note_json: the note as its event carries it (JSON)
-- ARGV[6] now_ms: now, ms
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', the agent holding it ('' = none)} | {'gone'} | {'not_yours'}
local conv = ARGV[1]
local state = redis.call('HGET', KEYS[1], conv)
if not state or state == 'closed' then return {'gone'} end
local holder = redis.call('HGET', KEYS[2], conv) or ''
if ARGV[2] ~= '' and holder ~= ARGV[2] then return {'not_yours'} end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
emit_event('note_added', conv, tonumber(ARGV[6]), '{"agent":'
  .. (ARGV[2] == '' and 'null' or cjson.encode(ARGV[2])) .. ',"note":' .. ARGV[5] .. '}')
return {'ok', holder}
