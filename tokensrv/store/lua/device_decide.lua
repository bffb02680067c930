-- The user's decision, once, while the code lives. KEYS[1] the device record.
-- ARGV: approved | denied, the approval JSON (or ''), now (epoch ms).
local f = redis.call('HMGET', KEYS[1], 's', 'e')
if f[1] ~= 'pending' or tonumber(ARGV[3]) >= tonumber(f[2]) * 1000 then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'a', ARGV[2])
return 1
