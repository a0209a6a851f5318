-- wrk script for bench/run: builds the request from the environment and, when the run is over,
-- prints one machine-readable "BENCH_RESULT" line (bench/run parses it; wrk's own --latency output
-- stays above it for humans).
--
--   BENCH_METHOD  GET (default) or POST
--   BENCH_BODY    request body; sent as application/x-www-form-urlencoded
--   BENCH_AUTH    value of the Authorization header (e.g. "Basic <base64 id:secret>")
--
-- No response() callback on purpose: defining one makes wrk hand every response to Lua, which
-- would slow the load generator. Non-2xx/3xx answers are counted by wrk itself (errors.status).

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")

wrk.method = method
if body and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.1f bytes=%d "
      .. "lat_mean_us=%.1f lat_stdev_us=%.1f lat_max_us=%d "
      .. "p50_us=%d p90_us=%d p99_us=%d p999_us=%d "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / seconds, summary.bytes,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    e.connect, e.read, e.write, e.status, e.timeout))
end
