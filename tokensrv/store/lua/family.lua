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
-- what Python reads of a family: name, value pairs with absolute times and no digest; `expiry`:
-- the key's EXPIRETIME when the caller has already read it
local function fields(f, rec, expiry)
  local client, jkt = holder(rec)
  local since, amr, acr = string.match(rec[AT], '^(-?%d+) ?([^ ]*) ?(.*)$')
  return {'c', client, 'k', jkt, 's', rec[S], 'sc', rec[SC], 'si', rec[SI], 'ca', rec[CA], 'ea', rec[EA],
          'at', created_second(rec) - tonumber(since), 'ie', expiry or redis.call('EXPIRETIME', f), 'am', amr,
          'ac', acr}
end

-- a base64url character's value, from its byte: A-Z 0-25, a-z 26-51, 0-9 52-61, - 62, _ 63
local function sextet(c)
  if c == 45 then return 62 end
  if c == 95 then return 63 end
  if c >= 97 then return c - 71 end
  if c >= 65 then return c - 65 end
  return c + 4
end
-- a sub as stored (_pack_sub): "=" and itself, or 16 bytes in base64url for 32 hex digits. Four
-- characters (three bytes, six hex digits) at a time: decoding byte by byte through unbase64url
-- and a gsub made this the costliest step of a rotation (71 of its 85-97 µs in Valkey's Lua)
local function unpack_sub(packed)
  if string.sub(packed, 1, 1) == '=' then return string.sub(packed, 2) end
  local hex, n = {}, #packed
  for i = 1, n - 3, 4 do
    local a, b, c, d = string.byte(packed, i, i + 3)
    hex[#hex + 1] = string.format('%06x', ((sextet(a) * 64 + sextet(b)) * 64 + sextet(c)) * 64 + sextet(d))
  end
  local rest, a, b, c = n % 4, string.byte(packed, n - n % 4 + 1, n)
  if rest == 2 then  -- 12 bits: one byte, then 4 padding bits
    hex[#hex + 1] = string.format('%02x', math.floor((sextet(a) * 64 + sextet(b)) / 16))
  elseif rest == 3 then  -- 18 bits: two bytes, then 2 padding bits
    hex[#hex + 1] = string.format('%04x', math.floor(((sextet(a) * 64 + sextet(b)) * 64 + sextet(c)) / 4))
  end
  return table.concat(hex)
end
