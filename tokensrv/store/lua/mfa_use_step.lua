-- A TOTP time-step, used once per user (RFC 6238 §5.2: no second use of a code in its window).
-- KEYS[1] the user's second-factor hash; ARGV[1] the time-step the code matched.
-- 1: the step is newer than any used before, now recorded; 0: used already (or an older one was
-- used after it); -1: the user has no second factor any more (removed or reset meanwhile).
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return -1 end
local step = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'step') or '-1')
if step <= last then return 0 end
redis.call('HSET', KEYS[1], 'step', ARGV[1])
return 1
