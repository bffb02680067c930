-- ARGV: now, then the sids whose fields to take (none: every field)
local k, now = KEYS[1], tonumber(ARGV[1])
local wanted = {}
for i = 2, #ARGV do wanted[ARGV[i]] = true end
local flat, taken = redis.call('HGETALL', k), {}
for i = 1, #flat, 2 do
  local sid = string.match(flat[i], '^([^ ]*)')
  if #ARGV == 1 or wanted[sid] then
    redis.call('HDEL', k, flat[i])
    if tonumber(flat[i + 1]) > now then table.insert(taken, flat[i]) end
  end
end
return taken
