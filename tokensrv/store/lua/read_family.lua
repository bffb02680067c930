-- A family's fields, and whether ARGV[1] (a raw digest, or '') is its live token's; nil when gone.
local rec = family_list(KEYS[1], AT - 1)
if #rec == 0 then return false end
local found = fields(KEYS[1], rec)
table.insert(found, 1, rec[H] == ARGV[1] and 1 or 0)
return found
