-- A family's fields, and whether ARGV[1] (a raw digest, or '') is its live token's; nil when gone.
upgrade(KEYS[1])
local rec = redis.call('LRANGE', KEYS[1], 0, AT - 1)
if #rec == 0 then return false end
local found = fields(KEYS[1], rec)
table.insert(found, 1, rec[H] == ARGV[1] and 1 or 0)
return found
