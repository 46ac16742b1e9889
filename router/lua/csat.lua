-- Store a customer's rating of a closed conversation they were asked about, once, within
-- the CSAT window; a low rating puts the conversation in the QA queue.
-- KEYS[1] rating: the conversation's CSAT record (hash)
-- KEYS[2] ask: the customer's pending CSAT question (string: conversation)
-- KEYS[3] customer_open: customer -> open conversation (hash)
-- KEYS[4] qa: the conversation's QA record (hash)
-- KEYS[5] qa_pending: conversations waiting for QA (zset, ms picked)
-- KEYS[#KEYS] events: the tenant's lifecycle events (stream)
-- ARGV[1] conversation: the conversation rated
-- ARGV[2] customer: the customer field of whoever rates
-- ARGV[3] score: 1..5
-- ARGV[4] comment: the customer's comment ('' = none)
-- ARGV[5] now_ms: now, ms
-- ARGV[6] reply: 1 = a digit written as a message, which counts only for the conversation
--   the customer was asked about last and while they have none open; 0 = a rating frame
-- ARGV[7] low_at_most: a score at most this puts the conversation in QA (0 = never)
-- ARGV[8] keep_ms: how long a new QA record is kept, ms (0 = for ever)
-- ARGV[#ARGV-1] events_max_len: events kept, about (0 = events are off)
-- ARGV[#ARGV] events_max_age_ms: the oldest event's age, ms (0 = no limit)
-- Returns {'ok', agent, queue, channel, picked for QA 0|1} | {'not_asked'} | {'expired'}
--       | {'already', score}
local conv = ARGV[1]
if ARGV[6] == '1' then
  if redis.call('GET', KEYS[2]) ~= conv then return {'not_asked'} end
  if redis.call('HGET', KEYS[3], ARGV[2]) then return {'not_asked'} end
end
local r = redis.call('HMGET', KEYS[1], 'customer', 'until_ms', 'score', 'agent', 'queue',
  'channel', 'closed_ms')
local until_ms = tonumber(r[2] or 0) or 0
if r[1] ~= ARGV[2] or until_ms <= 0 then return {'not_asked'} end
if r[3] then return {'already', r[3]} end
local now = tonumber(ARGV[5])
if now > until_ms then return {'expired'} end
local score = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'score', score, 'comment', ARGV[4], 'answered_ms', now)
-- The question stays (KEYS[2]) until the window ends, so that a channel's redelivery of the
-- digit, or a second one, is 'already' and never becomes a message.
emit_event('csat_received', conv, now, {score = score, comment = or_null(ARGV[4]),
  agent = or_null(r[4]), queue = or_null(r[5]), channel = or_null(r[6])})
local picked = 0
if score <= tonumber(ARGV[7]) then
  local reasons = redis.call('HGET', KEYS[4], 'reasons')
  if not reasons then
    redis.call('HSET', KEYS[4], 'reasons', 'low_csat', 'agent', r[4], 'queue', r[5],
      'channel', r[6], 'closed_ms', r[7], 'grade', '', 'picked_ms', now)
    local keep = tonumber(ARGV[8])
    if keep > 0 then redis.call('PEXPIRE', KEYS[4], keep) end
    redis.call('ZADD', KEYS[5], 'NX', now, conv)
    picked = 1
  elseif not string.find(',' .. reasons .. ',', ',low_csat,', 1, true) then
    redis.call('HSET', KEYS[4], 'reasons', reasons .. ',low_csat')
  end
  redis.call('HSET', KEYS[4], 'csat', score)
end
return {'ok', r[4], r[5], r[6], picked}
