-- Write deny-list entries and append them to the feed, atomically (one script, one slot: the deny
-- keys carry the feed's hash tag). Then trim the feed by the stream's own clock: entry ids are
-- Valkey's milliseconds, so a server clock that differs (or a test's injected one) never trims new
-- entries. KEYS: the feed, then the deny-list key of each entry that has one, in order.
-- ARGV: milliseconds to keep, then for each entry (kind, value, until, at, the deny-list value or
-- '' for none, the deny-list key's expiry in epoch s).
local id, next_key = nil, 2
for i = 2, #ARGV, 6 do
  if ARGV[i + 4] ~= '' then
    redis.call('SET', KEYS[next_key], ARGV[i + 4], 'EXAT', ARGV[i + 5])
    next_key = next_key + 1
  end
  id = redis.call('XADD', KEYS[1], '*', 'k', ARGV[i], 'v', ARGV[i + 1], 'u', ARGV[i + 2], 't', ARGV[i + 3])
end
local ms = tonumber(string.match(id, '^(%d+)'))
redis.call('XTRIM', KEYS[1], 'MINID', '~', math.max(0, ms - tonumber(ARGV[1])))
return id
