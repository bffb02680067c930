-- POST the password grant of a first-party client: one argon2 verification per request.
-- Arguments: basic_credentials, form body (username=...&password=...)
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

function init(args)
  wrk.method = "POST"
  wrk.body = "grant_type=password&" .. args[2]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. args[1]
end

function done(summary, latency, requests)
  report.json(summary, latency)
end
