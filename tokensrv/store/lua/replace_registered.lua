-- Compare-and-set of a client record on its registration access token (RFC 7592 §2.2 rotates it).
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw)['registration_token_digest'] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
