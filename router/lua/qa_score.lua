-- Store a lead's QA score of a conversation in the QA queue (a later score replaces an
-- earlier one): it leaves the pending list for the scored one.
-- KEYS[1] qa: the conversation's QA record (hash)
-- KEYS[2] qa_pending: conversations waiting for QA (zset, ms picked)
-- KEYS[3] qa_scored: conversations scored (zset, ms scored)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation scored
-- ARGV[2] score: the weighted mean of the items
-- ARGV[3] items: the item scores (JSON object)
-- ARGV[4] by: the lead scoring ('admin' for the admin token)
-- ARGV[5] note: the lead's note ('' = none)
-- ARGV[6] now_ms: now, ms
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', previous score or ''} | {'unknown'} (not in the QA queue)
local conv = ARGV[1]
local previous = redis.call('HGET', KEYS[1], 'score')
if not redis.call('HGET', KEYS[1], 'reasons') then return {'unknown'} end
redis.call('HSET', KEYS[1], 'score', ARGV[2], 'items', ARGV[3], 'by', ARGV[4], 'note', ARGV[5],
  'scored_ms', ARGV[6])
redis.call('ZREM', KEYS[2], conv)
redis.call('ZADD', KEYS[3], ARGV[6], conv)
emit_event('qa_scored', conv, tonumber(ARGV[6]), '{"score":' .. ARGV[2] .. ',"items":' .. ARGV[3]
  .. ',"by":' .. cjson.encode(ARGV[4]) .. ',"note":'
  .. (ARGV[5] == '' and 'null' or cjson.encode(ARGV[5])) .. '}')
return {'ok', previous or ''}
