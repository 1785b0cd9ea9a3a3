-- wrk script: POST /classify with request bodies read from $BODIES (one JSON body
-- per line), each thread walking the list from its own offset; done() prints one
-- JSON line with the figures the benchmark needs.
local bodies = {}
local path = os.getenv("BODIES")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end

local counter = 0
local thread_offset = 0
local threads = {}

function setup(thread)
  thread:set("thread_offset", #threads * 9973)
  threads[#threads + 1] = thread
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = bodies[((thread_offset + counter) % #bodies) + 1]
  return wrk.format(nil, nil, nil, body)
end

-- A polite client: after a 429 or 503 the next request waits for Retry-After, as a
-- client of a shared service should. (Waits are outside wrk's latency figures.)
refused = 0  -- global: done() reads it from each thread
local backoff = {}

function response(status, headers, body)
  if status == 429 or status == 503 then
    refused = refused + 1
    local after = tonumber(headers["retry-after"] or headers["Retry-After"] or "1") or 1
    backoff[#backoff + 1] = after * 1000
  end
end

function delay()
  if #backoff == 0 then
    return 0
  end
  return table.remove(backoff, 1)
end

function done(summary, latency, requests)
  local total_refused = 0
  for _, thread in ipairs(threads) do
    total_refused = total_refused + thread:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"status_errors": %d, "timeouts": %d, "refused": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    total_refused))
end
