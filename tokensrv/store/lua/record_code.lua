if redis.call('HGET', KEYS[1], 's') ~= 'issuing' then return 0 end
redis.call('HSET', KEYS[1], 's', 'issued', 't', ARGV[1])
return 1
