-- A passkey's use: its signature counter compared and set at once (WebAuthn §6.1.1, §7.2 step 22).
-- KEYS[1] the user's passkeys hash; ARGV[1] credential id, ARGV[2] the assertion's sign count,
-- ARGV[3] now (epoch s).
-- 1: recorded; 0: refused, the counter did not go up though it or the stored one is non-zero (a
-- cloned authenticator or an old assertion replayed); -1: no such credential (removed meanwhile).
if redis.call('HEXISTS', KEYS[1], 'c:' .. ARGV[1]) == 0 then return -1 end
local count = tonumber(ARGV[2])
local stored = tonumber(redis.call('HGET', KEYS[1], 'n:' .. ARGV[1]) or '0')
if (count > 0 or stored > 0) and count <= stored then return 0 end
redis.call('HSET', KEYS[1], 'n:' .. ARGV[1], ARGV[2], 'u:' .. ARGV[1], ARGV[3])
return 1
