-- The refresh grant's one store call: check, then rotate, one refresh family, atomically (one Lua
-- call, one declared key). Every refusal a request can cause answers before anything is written,
-- so a refused request leaves the presented token usable: a family unknown, expired (idle end,
-- absolute end, or ARGV[9] seconds after its creation: REFRESH_FAMILY_TTL as configured now), of
-- another client, bound to a DPoP key other than the proof's (ARGV[11], '' without a proof: also
-- before the reuse check, so a stolen token without its key cannot even end the family), or asked
-- for a scope it was not granted (ARGV[10], tokens already checked by Python). Reuse is the one
-- refusal that writes: the family dies. The predecessor of a live token nobody has presented yet is
-- not reuse within ARGV[8] seconds of its rotation (REFRESH_REUSE_GRACE): it is a retry, and rotates
-- again. A rotation answers with the family's fields as they were before it changed (or deleted) them.
-- With ARGV[12] (the user records' key prefix) and ARGV[13] (the `ended` markers'), a rotation also
-- answers the user record and whether the family's session ended, so that the grant needs one
-- round trip. Those keys are named from the family's fields, not declared: only outside Cluster,
-- where every key is on the one server (on Cluster they are other slots; Python reads them there).
local f = KEYS[1]
local presented, new, client, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local jti, jexp, idle, grace = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local max_life, wanted, proof_jkt = tonumber(ARGV[9]), ARGV[10], ARGV[11]
local user_prefix, ended_prefix = ARGV[12] or '', ARGV[13]
local rec = family_list(f, -1)
if #rec == 0 then return {'unknown', ''} end
local created, ea, expiry = created_second(rec), tonumber(rec[EA]), redis.call('EXPIRETIME', f)
local idle_end = expiry < 0 and ea or expiry
if now >= math.min(idle_end, ea) then
  redis.call('DEL', f)
  return {'unknown', ''}
end
-- dead by today's REFRESH_FAMILY_TTL; not deleted: the setting may be raised again
if max_life > 0 and now >= created + max_life then return {'unknown', ''} end
local holder_client, holder_jkt = holder(rec)
if holder_client ~= client then return {'wrong_client', ''} end
if holder_jkt ~= '' and holder_jkt ~= proof_jkt then return {'wrong_key', ''} end
if wanted ~= '' then
  local granted = {}
  for s in string.gmatch(rec[SC], '[^ ]+') do granted[s] = true end
  for s in string.gmatch(wanted, '[^ ]+') do
    if not granted[s] then return {'invalid_scope', ''} end
  end
end
local before, all = fields(f, rec, expiry), issued(rec)
local kept = unexpired(all, now)
local function renew(predecessor, since)
  table.insert(kept, {jti, jexp})
  local deadline = math.min(now + idle, ea)
  redis.call('LSET', f, H - 1, new)
  redis.call('LSET', f, J - 1, packed(kept, created))
  redis.call('LTRIM', f, 0, AT - 1)
  if predecessor then redis.call('RPUSH', f, predecessor, since) end
  redis.call('EXPIREAT', f, deadline)
end
-- what the grant checks after a rotation: the user record ('' when gone) and the session's end
local function rotated(replaced)
  if user_prefix == '' then return {'rotated', replaced, before} end
  local user = redis.call('GET', user_prefix .. unpack_sub(rec[S])) or ''
  local ended = rec[SI] ~= '' and redis.call('EXISTS', ended_prefix .. rec[SI]) or 0
  return {'rotated', replaced, before, user, ended}
end
if rec[H] == presented then
  -- the live token is used: from now on its predecessor is reuse (RFC 9700 §4.14.2); it becomes
  -- the predecessor itself, kept only with a reuse window
  renew(grace > 0 and presented or nil, now)
  return rotated('')
end
if grace > 0 and rec[P] == presented and now - tonumber(rec[PT]) <= grace then
  -- the live token was never used: whoever holds it did not get our answer (a timeout, a 503, a
  -- lost connection), or a thief and the client both hold the predecessor and will collide at
  -- the next use. Rotate from the predecessor again, as often as it comes within the window
  -- (counted from its first rotation): the unused pair is replaced, its access token (the last
  -- one issued) revoked unless expired, and the predecessor stays what it was
  local replaced = {}
  if #all > 0 and all[#all][2] > now then replaced = {table.remove(kept)} end
  renew(presented, rec[PT])
  return rotated(answer(replaced))
end
-- any other token of this family is an old one: reuse. The family dies with its access tokens.
redis.call('DEL', f)
return {'reused', answer(kept), before}
