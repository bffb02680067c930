-- A code's states: fresh -> issuing (redeemed) -> issued (t: "family jti exp"); any presentation
-- after the first turns it to replayed, and returns what it issued so far.
local k = KEYS[1]
local s = redis.call('HGET', k, 's')
if not s then return {'unknown', ''} end
if s == 'fresh' then
  local r = redis.call('HGET', k, 'r')
  redis.call('HSET', k, 's', 'issuing')
  redis.call('HDEL', k, 'r')
  redis.call('EXPIRE', k, tonumber(ARGV[1]))
  return {'ok', r}
end
redis.call('HSET', k, 's', 'replayed')
return {'replayed', redis.call('HGET', k, 't') or ''}
