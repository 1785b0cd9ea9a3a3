-- wrk script: POST /classify with request bodies read from $BODIES (one JSON body
-- per line), each thread walking the list from its own offset; done() prints one
-- JSON line with the figures the benchmark needs.
--
-- By default the client is polite: after a 429 or 503 the next request waits for
-- Retry-After, as a client of a shared service should. IGNORE_RETRY_AFTER=1 makes it
-- retry at once, the client that overload protection must survive.
local bodies = {}
local path = os.getenv("BODIES")
for line in io.lines(path) do
  bodies[#bodies + 1] = line
end
local polite = os.getenv("IGNORE_RETRY_AFTER") ~= "1"

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

-- Globals: done() reads them from each thread.
ok = 0            -- 2xx
status_429 = 0
status_503 = 0
status_5xx = 0    -- any other 5xx
status_other = 0  -- any other non-2xx (4xx but 429, 3xx)
no_retry_after = 0  -- 429s and 503s without a Retry-After header
local backoff = {}

local function retry_after(headers)
  for name, value in pairs(headers) do
    if string.lower(name) == "retry-after" then
      return tonumber(value)
    end
  end
  return nil
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
    return
  end
  if status == 429 or status == 503 then
    if status == 429 then status_429 = status_429 + 1 else status_503 = status_503 + 1 end
    local after = retry_after(headers)
    if after == nil then
      no_retry_after = no_retry_after + 1
    end
    if polite then
      backoff[#backoff + 1] = (after or 1) * 1000
    end
  elseif status >= 500 then
    status_5xx = status_5xx + 1
  else
    status_other = status_other + 1
  end
end

-- (Waits are outside wrk's latency figures.)
function delay()
  if #backoff == 0 then
    return 0
  end
  return table.remove(backoff, 1)
end

local function clamp(p)
  if p < 0 then return 0 end
  if p > 100 then return 100 end
  return p
end

function done(summary, latency, requests)
  local t = {ok = 0, status_429 = 0, status_503 = 0, status_5xx = 0, status_other = 0,
             no_retry_after = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do
      t[name] = t[name] + thread:get(name)
    end
  end
  -- wrk times every response, refusals included. Assuming every 429 is answered
  -- faster than any 2xx, the accepted requests' p99 lies between these two
  -- percentiles of the whole (the other non-2xx placed below or above them).
  local n = t.ok + t.status_429 + t.status_503 + t.status_5xx + t.status_other
  local lo, hi = 0, 0
  if n > 0 and t.ok > 0 then
    local rank = t.status_429 + 0.99 * t.ok
    lo = latency:percentile(clamp(100 * rank / n))
    hi = latency:percentile(clamp(100 * (rank + n - t.ok - t.status_429) / n))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
    .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
    .. '"status_errors": %d, "timeouts": %d, "refused": %d, "ok": %d, "status_429": %d, '
    .. '"status_503": %d, "status_5xx": %d, "status_other": %d, "no_retry_after": %d, '
    .. '"accepted_p99_lo_us": %d, "accepted_p99_hi_us": %d, "polite": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    t.status_429 + t.status_503, t.ok, t.status_429, t.status_503, t.status_5xx,
    t.status_other, t.no_retry_after, lo, hi, tostring(polite)))
end
