-- One poll, atomically: the interval is enforced per device code here, against the caller's
-- (injected) clock in ARGV, so two instances polled at once cannot both let a poll through.
-- KEYS[1] the device record. ARGV: client id, now (epoch ms), the slow_down step (s).
local k = KEYS[1]
local f = redis.call('HMGET', k, 'c', 'e', 'i', 'l', 's', 'a')
if not f[1] then return {'unknown', ''} end
if f[1] ~= ARGV[1] then return {'wrong_client', ''} end
if f[5] == 'done' then return {'used', ''} end
local now = tonumber(ARGV[2])
if now >= tonumber(f[2]) * 1000 then return {'expired', ''} end
local interval, last = tonumber(f[3]), tonumber(f[4])
redis.call('HSET', k, 'l', ARGV[2])
if last and now - last < interval * 1000 then
  interval = interval + tonumber(ARGV[3])
  redis.call('HSET', k, 'i', interval)
  return {'slow_down', tostring(interval)}
end
if f[5] == 'approved' then
  redis.call('HSET', k, 's', 'done')
  redis.call('HDEL', k, 'a')
  return {'approved', f[6]}
end
return {f[5], tostring(interval)}
