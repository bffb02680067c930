-- Shared by the bench scripts: one JSON line with the run's summary, read by bench/wrk.py.
local report = {}

function report.json(summary, latency, extra)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d%s}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, extra or ""))
end

-- wrk hands script arguments over from index 1 (index 0 is the URL)
function report.arg(args, i, default)
  local v = args[i]
  if v == nil or v == "" then return default end
  return v
end

-- optional pacing: each connection waits this long after a response, so latency is measured
-- below saturation instead of being mostly queueing
function report.pace(ms)
  if ms > 0 then
    function delay() return ms end
  end
end

return report
