-- An agent's socket closed. Only the connection that is still current may unregister, so a
-- replaced connection closing late cannot undo its replacement. The grace timer starts.
-- KEYS[1] agent -> node (hash)   KEYS[2] agent -> connection id (hash)
-- KEYS[3] available agents (set)   KEYS[4] agent disconnected-at ms (hash)
-- ARGV[1] agent   ARGV[2] connection id   ARGV[3] now ms
-- Returns 1 when unregistered, 0 when a newer connection holds the agent.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
return 1
