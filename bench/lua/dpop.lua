-- The client_credentials grant with a DPoP proof (RFC 9449) per request. A proof is accepted once
-- (its jti), and a wrk script cannot sign one per request cheaply, so proofs are made before the
-- run (bench/seed.py dpop_proofs: one client key, distinct jtis) and each request takes the next;
-- done() writes back the unused ones, so the next slice never replays a proof.
-- Arguments: basic_credentials, proofs_in (one per line), proofs_out
-- Run with one thread (-t1): the pool is that thread's.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  auth = "Basic " .. args[1]
  proofs, first = {}, 1
  for line in io.lines(args[2]) do
    if line ~= "" then table.insert(proofs, line) end
  end
  out_path = args[3]
end

function request()
  local proof = proofs[first] or "exhausted"
  proofs[first] = nil
  first = first + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
    ["DPoP"] = proof,
  }, "grant_type=client_credentials")
end

function done(summary, latency, requests)
  local left = 0
  local out = io.open(threads[1]:get("out_path"), "w")
  for _, thread in ipairs(threads) do
    local pool, f = thread:get("proofs"), thread:get("first")
    local i = f
    while pool[i] do
      out:write(pool[i], "\n")
      left, i = left + 1, i + 1
    end
  end
  out:close()
  report.json(summary, latency, string.format(', "proofs_left": %d', left))
end
