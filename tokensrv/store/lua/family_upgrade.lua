-- the earlier layout: a hash with text digests, absolute exps in j ("jti exp"), the idle end in
-- ia as well as in the key's expiry, hj and pg
local function upgrade(f)
  if redis.call('TYPE', f)['ok'] ~= 'hash' then return end
  local old, flat = {}, redis.call('HGETALL', f)
  for i = 1, #flat, 2 do old[flat[i]] = flat[i + 1] end
  local idle_end = redis.call('EXPIRETIME', f)
  if idle_end < 0 and old.ia then idle_end = tonumber(old.ia) end
  local created, entries = math.floor(tonumber(old.ca) / 1000), {}
  for jti, exp in string.gmatch(old.j or '', '([^;]+) (%d+)') do table.insert(entries, {jti, tonumber(exp)}) end
  redis.call('DEL', f)
  redis.call('RPUSH', f, unbase64url(old.h), packed(entries, created), old.c, '=' .. old.s, old.sc,
             old.si or '', old.ca, old.ea, created - tonumber(old.at or created))
  if old.p and old.pt and old.pg ~= '1' then redis.call('RPUSH', f, unbase64url(old.p), old.pt) end
  if idle_end > 0 then redis.call('EXPIREAT', f, idle_end) end
end
-- the family's values (LRANGE f 0 `last`), a family of the earlier layout rewritten first: LRANGE
-- fails on its hash, so that a family in today's layout costs no TYPE call. Without the upgrade,
-- this is redis.call('LRANGE', f, 0, last)
local function family_list(f, last)
  local rec = redis.pcall('LRANGE', f, 0, last)
  if rec['err'] == nil then return rec end
  upgrade(f)
  return redis.call('LRANGE', f, 0, last)
end
