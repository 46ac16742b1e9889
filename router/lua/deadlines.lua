-- Give a conversation placed afresh as a graded complaint (an edited review) its grade's
-- deadlines, counted from now, when the edit made it a complaint: one that has deadlines
-- keeps them, and a closed one gets none.
-- KEYS[1] state: conversation state (hash)
-- KEYS[2] route: conversation route (hash)
-- KEYS[3] timers: conversation timers (zset)
-- ARGV[1] conversation: the conversation
-- ARGV[2] deadlines: the deadlines, as the route keeps them (JSON)
-- ARGV[3..] timer_items: their timers: kind, due ms, kind, due ms...
-- Returns 1 when it gave them, 0 when not
local conv = ARGV[1]
local state = redis.call('HGET', KEYS[1], conv)
local route = get_route(KEYS[2], conv)
if not state or state == 'closed' or not route or route.dl then return 0 end
route.dl = cjson.decode(ARGV[2])
put_route(KEYS[2], conv, route)
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[3], ARGV[i + 1], ARGV[i] .. '|' .. conv)
end
return 1
