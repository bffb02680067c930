-- Delete a family, returning its access tokens ("jti exp;…"), or nil when it was already gone.
local rec = family_list(KEYS[1], AT - 1)
if #rec == 0 then return false end
redis.call('DEL', KEYS[1])
return answer(issued(rec))
