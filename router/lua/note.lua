-- Add an internal note to an open conversation: its agent's, or anyone's for a supervisor.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] agent_of: conversation -> agent (hash)
-- KEYS[3] notes: the conversation's internal notes (list)
-- ARGV[1] conversation: the conversation
-- ARGV[2] agent: the agent adding it ('' = a supervisor)
-- ARGV[3] note: the note (msgpack)
-- ARGV[4] keep: how many notes a conversation keeps, the oldest dropped first
-- Returns {'ok', the agent holding it ('' = none)} | {'gone'} | {'not_yours'}
local conv = ARGV[1]
local state = redis.call('HGET', KEYS[1], conv)
if not state or state == 'closed' then return {'gone'} end
local holder = redis.call('HGET', KEYS[2], conv) or ''
if ARGV[2] ~= '' and holder ~= ARGV[2] then return {'not_yours'} end
redis.call('RPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
return {'ok', holder}
