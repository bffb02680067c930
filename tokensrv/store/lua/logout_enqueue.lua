-- KEYS: queue, retries; ARGV: the bound, then one job per argument. Answers how many were queued.
local room = tonumber(ARGV[1]) - redis.call('XLEN', KEYS[1]) - redis.call('ZCARD', KEYS[2])
local added = 0
for i = 2, #ARGV do
  if room <= 0 then break end
  redis.call('XADD', KEYS[1], '*', 'job', ARGV[i])
  room, added = room - 1, added + 1
end
return added
