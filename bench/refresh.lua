-- wrk script for bench/refresh: every request presents a refresh token from a pool and puts the
-- successor from the answer back, so each token follows its own rotation chain (grace 0: a token is
-- never presented twice). BENCH_TOKENS: comma-separated initial refresh tokens, one per connection.
-- BENCH_AUTH: the client's Basic authorization header.

local pool = {}
for token in string.gmatch(os.getenv("BENCH_TOKENS") or "", "[^,]+") do
  table.insert(pool, token)
end
local auth = os.getenv("BENCH_AUTH")
local failures = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = auth

function request()
  local token = table.remove(pool)
  if token == nil then
    token = "exhausted"
  end
  return wrk.format(nil, nil, nil, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local successor = string.match(body, '"refresh_token":"([^"]+)"')
  if status == 200 and successor then
    table.insert(pool, successor)
  else
    failures = failures + 1
    if failures <= 3 then
      io.stderr:write("refresh failed: " .. status .. " " .. body .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("BENCH_RESULT rps=%.1f p50_ms=%.2f p99_ms=%.2f non2xx=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status))
end
