-- POST the client_credentials grant with HTTP Basic client authentication.
-- Arguments: basic_credentials (base64 of id:secret), [pace_ms], [more form fields, e.g. scope=read]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

function init(args)
  local more = report.arg(args, 3, "")
  wrk.method = "POST"
  wrk.body = "grant_type=client_credentials" .. (more ~= "" and "&" .. more or "")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = "Basic " .. args[1]
  report.pace(tonumber(report.arg(args, 2, "0")))
end

function done(summary, latency, requests)
  report.json(summary, latency)
end
