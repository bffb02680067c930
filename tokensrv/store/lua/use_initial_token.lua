-- One use of an initial access token: of two concurrent registrations with its last use, exactly
-- one gets it. DECR keeps the key's expiry.
local left = tonumber(redis.call('GET', KEYS[1]))
if not left or left < 1 then return 0 end
if left == 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 1
