-- A refresh family (keyspace.family) is a list, so that Valkey keeps it as one listpack of values without
-- field names: the same values in a hash took 302 bytes per family (100,000 of them, counted as
-- `make bench` counts; its allocation one 16-byte step larger), this list 285 (target: 300).
-- Positions, 1-based as Lua sees LRANGE's answer (LSET and LTRIM take them minus one):
--   1 h   SHA-256 of the live token: 32 raw bytes, compared by the scripts only (redis-py decodes
--         every reply as UTF-8, so no raw value is ever answered)
--   2 j   access tokens issued and not known to be expired, "jti+exp;jti+exp", each exp in seconds
--         after the creation second; the last one was issued with the live token
--   3 c   client id; for a family bound to a DPoP key (RFC 9449 §5: a public client's), the id,
--         a space and the key's thumbprint (client ids have no spaces): an unbound family pays
--         nothing, and families written before DPoP read as unbound
--                                  4 s   sub, packed (_pack_sub)   5 sc  scope
--   6 si  SSO session id, or ''    7 ca  created, epoch ms           8 ea  absolute end, epoch s
--   9 at  seconds from the login (auth_time) to the creation; then, if known, a space and the
--         sign-in's amr (comma-separated), and a space and the acr told if not the amr's own
--  10 p   SHA-256 (raw) of the token the live one replaced, and 11 pt when it was first replaced:
--         only with a reuse window (REFRESH_REUSE_GRACE), until the live token is used (which
--         makes the live one the predecessor)
-- The idle end is the key's own expiry (EXPIREAT from the server's clock; EXPIRETIME reads it).
-- The scripts also apply the server's (injected) clock, so an instance whose clock runs ahead
-- never rotates a family it considers dead. A family written by the earlier layout (a hash) is
-- rewritten in this one by the first script that touches it.
local H, J, C, S, SC, SI, CA, EA, AT, P, PT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

local function created_second(rec) return math.floor(tonumber(rec[CA]) / 1000) end
-- the client id and the DPoP key thumbprint ('' for none) a family is bound to
local function holder(rec)
  local client, jkt = string.match(rec[C], '^([^ ]*) ?(.*)$')
  return client, jkt
end

-- j as {jti, exp} pairs (exp absolute), and back
local function issued(rec)
  local entries, created = {}, created_second(rec)
  for jti, exp in string.gmatch(rec[J], '([^;+]+)%+(-?%d+)') do
    table.insert(entries, {jti, created + tonumber(exp)})
  end
  return entries
end
local function packed(entries, created)
  local parts = {}
  for _, e in ipairs(entries) do table.insert(parts, e[1] .. '+' .. (e[2] - created)) end
  return table.concat(parts, ';')
end
local function unexpired(entries, now)
  local kept = {}
  for _, e in ipairs(entries) do if e[2] > now then table.insert(kept, e) end end
  return kept
end
-- "jti exp;jti exp", exp absolute: how Python reads access tokens to deny
local function answer(entries)
  local parts = {}
  for _, e in ipairs(entries) do table.insert(parts, e[1] .. ' ' .. e[2]) end
  return table.concat(parts, ';')
end
-- what Python reads of a family: name, value pairs with absolute times and no digest
local function fields(f, rec)
  local client, jkt = holder(rec)
  local since, amr, acr = string.match(rec[AT], '^(-?%d+) ?([^ ]*) ?(.*)$')
  return {'c', client, 'k', jkt, 's', rec[S], 'sc', rec[SC], 'si', rec[SI], 'ca', rec[CA], 'ea', rec[EA],
          'at', created_second(rec) - tonumber(since), 'ie', redis.call('EXPIRETIME', f), 'am', amr, 'ac', acr}
end

-- a sub as stored (_pack_sub): "=" and itself, or 16 bytes in base64url for 32 hex digits
local function unpack_sub(packed)
  if string.sub(packed, 1, 1) == '=' then return string.sub(packed, 2) end
  return (string.gsub(unbase64url(packed), '.', function(c) return string.format('%02x', string.byte(c)) end))
end
