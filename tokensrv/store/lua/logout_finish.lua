-- KEYS: queue, retries; ARGV: entry id, group, then (retry) the job and when (epoch ms)
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if ARGV[3] then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
