-- GET one path. Arguments: [pace_ms]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

function init(args)
  report.pace(tonumber(report.arg(args, 1, "0")))
end

function done(summary, latency, requests)
  report.json(summary, latency)
end
