local k, field, untl, now = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local old = tonumber(redis.call('HGET', k, field) or '0')
if old < untl then redis.call('HSET', k, field, untl) end
local flat, latest = redis.call('HGETALL', k), untl
for i = 1, #flat, 2 do
  local u = tonumber(flat[i + 1])
  if u <= now then redis.call('HDEL', k, flat[i]) elseif u > latest then latest = u end
end
redis.call('EXPIREAT', k, latest)
