-- The refresh_token grant. Every use rotates the token, so each token is in flight at most once:
-- tokens wait in a queue; a request takes one, its response puts the successor back.
-- Arguments: basic_credentials, tokens_in (one per line), tokens_out (written by done())
-- Run with one thread (-t1): the queue is that thread's.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  auth = "Basic " .. args[1]
  queue, first, last = {}, 1, 0
  for line in io.lines(args[2]) do
    if line ~= "" then
      last = last + 1
      queue[last] = line
    end
  end
  lost = 0
  out_path = args[3]
end

function request()
  local token = "exhausted"
  if first <= last then
    token = queue[first]
    queue[first] = nil
    first = first + 1
  end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local successor = status == 200 and body:match('"refresh_token":%s*"([^"]+)"')
  if successor then
    last = last + 1
    queue[last] = successor
  else
    lost = lost + 1
  end
end

function done(summary, latency, requests)
  local kept, lost_total = 0, 0
  local out = io.open(threads[1]:get("out_path"), "w")
  for _, thread in ipairs(threads) do
    local q, f, l = thread:get("queue"), thread:get("first"), thread:get("last")
    for i = f, l do
      out:write(q[i], "\n")
      kept = kept + 1
    end
    lost_total = lost_total + thread:get("lost")
  end
  out:close()
  report.json(summary, latency, string.format(', "tokens_kept": %d, "tokens_lost": %d', kept, lost_total))
end
