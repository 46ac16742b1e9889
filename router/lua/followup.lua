-- Record, once per conversation, what follows its close: the CSAT question (the customer's
-- pending question, the window it is open for) and the QA pick, so that a rating or a lead
-- finds them whichever process asks. The caller decided both from the stored close.
-- KEYS[1] rating: the conversation's CSAT record (hash)
-- KEYS[2] ask: the customer's pending CSAT question (string: conversation)
-- KEYS[3] qa: the conversation's QA record (hash)
-- KEYS[4] qa_pending: conversations waiting for QA (zset, ms picked)
-- KEYS[5] state: conversation state (hash)
-- ARGV[1] conversation: the conversation closed
-- ARGV[2] customer: its customer field
-- ARGV[3] agent: the agent who held it ('' = none)
-- ARGV[4] queue: its queue
-- ARGV[5] channel: its channel
-- ARGV[6] closed_ms: when it closed, ms
-- ARGV[7] ask_until_ms: the CSAT window's end, ms (0 = the customer is not asked)
-- ARGV[8] qa_reasons: why it lands in QA, comma-separated ('' = it does not)
-- ARGV[9] grade: its complaint grade ('' = none)
-- ARGV[10] keep_ms: how long the records are kept, ms (0 = for ever)
-- Returns {'ok'} | {'done'} (followed up before) | {'open'} (open again: nothing to do)
local conv = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 1 then return {'done'} end
if redis.call('HGET', KEYS[5], conv) ~= 'closed' then return {'open'} end
local keep = tonumber(ARGV[10])
local ask_until = tonumber(ARGV[7])
redis.call('HSET', KEYS[1], 'customer', ARGV[2], 'agent', ARGV[3], 'queue', ARGV[4],
  'channel', ARGV[5], 'closed_ms', ARGV[6], 'until_ms', ask_until)
if keep > 0 then redis.call('PEXPIRE', KEYS[1], keep) end
if ask_until > 0 then
  local ttl = ask_until - tonumber(ARGV[6])
  if ttl > 0 then redis.call('SET', KEYS[2], conv, 'PX', ttl) end
end
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[3], 'reasons', ARGV[8], 'agent', ARGV[3], 'queue', ARGV[4],
    'channel', ARGV[5], 'closed_ms', ARGV[6], 'grade', ARGV[9], 'picked_ms', ARGV[6])
  if keep > 0 then redis.call('PEXPIRE', KEYS[3], keep) end
  redis.call('ZADD', KEYS[4], 'NX', ARGV[6], conv)
end
return {'ok'}
